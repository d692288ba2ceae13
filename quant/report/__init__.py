"""Run reports."""

from quant.report._run_report import report_path, write_run_report

__all__ = ["report_path", "write_run_report"]
