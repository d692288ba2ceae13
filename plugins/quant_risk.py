"""Airflow plugin ``quant_risk``: the Risk page and per-run report links in the Airflow UI.

- "Risk" in the navigation: the sidecar's state, limits, day P&L and recent
  kill-switch events, with kill and resume controls (sidecar token required).
- On every DAG run: "Run report" and "Data quality" tabs with the run's HTML
  report and its Great Expectations Data Docs.

The pages are a FastAPI app (``quant.report.create_app``) served by the API
server under ``/quant``.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from quant.orchestration import TriggerConfGuard
from quant.report import create_app


class QuantRiskPlugin(AirflowPlugin):
    """Risk page and run-report links."""

    name = "quant_risk"
    fastapi_apps = [{"app": create_app(), "url_prefix": "/quant", "name": "quant"}]
    # refuses a trigger or backfill whose conf has keys the DAG does not declare as params
    fastapi_root_middlewares = [{"middleware": TriggerConfGuard, "name": "quant_trigger_conf_guard"}]
    external_views = [
        {"name": "Risk", "href": "/quant/risk", "destination": "nav", "url_route": "risk"},
        {
            "name": "Run report",
            "href": "/quant/runs/{DAG_ID}/{RUN_ID}/report",
            "destination": "dag_run",
            "url_route": "run-report",
        },
        {
            "name": "Data quality",
            "href": "/quant/runs/{DAG_ID}/{RUN_ID}/data-quality",
            "destination": "dag_run",
            "url_route": "data-quality",
        },
    ]
