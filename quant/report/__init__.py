"""Run reports."""

from quant.report._run_report import report_path, write_run_report
from quant.report._web import create_app

__all__ = ["create_app", "report_path", "write_run_report"]
