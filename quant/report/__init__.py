"""Run reports, the weekly performance report, and the UI pages of the quant_risk plugin.

Reports are stored per DAG run: ``reports/<dag_id>/runs/<run_key>/index.html``
(:func:`report_path`) with the run's Data Docs in ``data_quality/`` beside it
(:func:`data_docs_path`); ``reports/<dag_id>/<session>/index.html``
(:func:`session_page_path`) lists the runs of a session.
"""

from quant.report._performance import (
    PERFORMANCE_DAG_ID,
    performance_report_path,
    write_performance_report,
)
from quant.report._run_report import stage_wall_seconds, wall_seconds, write_run_report
from quant.report._session_page import session_runs, write_session_page
from quant.report._web import WebAuth, create_app
from quant.run_folders import (
    data_docs_path,
    report_path,
    run_dir,
    run_key,
    session_page_path,
)

__all__ = [
    "PERFORMANCE_DAG_ID",
    "WebAuth",
    "create_app",
    "data_docs_path",
    "performance_report_path",
    "report_path",
    "run_dir",
    "run_key",
    "session_page_path",
    "session_runs",
    "stage_wall_seconds",
    "wall_seconds",
    "write_performance_report",
    "write_run_report",
    "write_session_page",
]
