"""Run reports, the weekly performance report, and the UI pages of the quant_risk plugin."""

from quant.report._performance import (
    PERFORMANCE_DAG_ID,
    performance_report_path,
    write_performance_report,
)
from quant.report._run_report import report_path, write_run_report
from quant.report._web import create_app

__all__ = [
    "PERFORMANCE_DAG_ID",
    "create_app",
    "performance_report_path",
    "report_path",
    "write_performance_report",
    "write_run_report",
]
