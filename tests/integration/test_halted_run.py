"""A daily run while the risk sidecar is HALTED submits nothing, and its report says so."""

from __future__ import annotations

import os

import pytest

from quant.calendar import get_calendar
from quant.config import Settings
from quant.testing.db import query

pytestmark = pytest.mark.integration


def test_daily_trading_when_sidecar_halted_then_no_order_submitted_and_report_says_so(
    clean_db: Settings, airflow_db: Settings, sidecar: object
) -> None:
    from quant.orchestration import run_dag
    from quant.report import report_path
    from quant.sidecar import SidecarClient

    session = get_calendar(clean_db.exchange).latest_closed_session()
    client = SidecarClient(clean_db.sidecar_url, token=os.environ["QUANT_SIDECAR_TOKEN"])
    try:
        assert client.kill("halted-run drill", "halt")["trading_state"] == "HALTED"
        result = run_dag(session, settings=clean_db)
    finally:
        client.resume("halted-run drill over")
        client.close()

    assert result.state == "failed", result.task_states
    assert result.task_states["submit_orders"] == "failed"
    assert result.task_states["report"] != "success"  # the failure callback wrote the page

    orders = query(clean_db, "select status, reject_reasons, broker_order_id from ops.orders "
                   "where logical_date = %s", session)
    assert orders, "orders were generated before the halted submission"
    assert all(status in ("generated", "approved", "rejected") for status, _, _ in orders)
    assert all(broker_id is None for _, _, broker_id in orders)
    sent = query(clean_db, "select count(*) from ops.sim_orders o join ops.orders q "
                 "using (client_order_id) where q.logical_date = %s", session)
    assert sent == [(0,)]

    page = report_path("daily_trading", result.run_id, clean_db).read_text()
    assert "Run failed" in page
    assert "No order submitted: the risk sidecar is HALTED" in page
    assert "halted-run drill" in page
    assert "submit_orders" in page
    assert query(clean_db, "select status from ops.pipeline_runs where run_id = %s",
                 result.run_id) == [("failed",)]
