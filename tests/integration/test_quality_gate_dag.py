"""A failed data-quality gate stops the DAG run before any model, weight or order."""

from __future__ import annotations

import pytest

from quant.calendar import get_calendar
from quant.config import Settings
from quant.data import ingest_bars
from quant.testing.db import execute, scalar

pytestmark = pytest.mark.integration

DOWNSTREAM = (
    "retrain_model", "predict", "optimize_portfolio", "generate_orders",
    "pretrade_check", "submit_orders", "reconcile", "report",
)


def test_daily_trading_when_close_is_nan_then_gate_fails_and_nothing_downstream_runs(
    clean_db: Settings, airflow_db: Settings, sidecar: object
) -> None:
    from quant.orchestration import run_dag

    session = get_calendar(clean_db.exchange).latest_closed_session()
    ingest_bars(session, settings=clean_db)
    symbol = scalar(clean_db, "select min(symbol) from raw.bars where date = %s", session)
    execute(clean_db, "update raw.bars set close = 'NaN' where symbol = %s and date = %s", symbol,
            session)

    result = run_dag(session, settings=clean_db)

    assert not result.succeeded
    assert result.task_states["data_quality"] == "failed"
    for task_id in DOWNSTREAM:
        assert result.task_states[task_id] == "upstream_failed", (task_id, result.task_states)
    failed = scalar(
        clean_db,
        "select string_agg(check_name, ',') from ops.dq_results "
        "where session_date = %s and not success and severity = 'blocking'",
        session,
    )
    assert "raw_bars.prices_finite" in failed
    for table, column in (
        ("ops.orders", "logical_date"), ("ops.target_weights", "session_date"),
        ("ops.predictions", "session_date"),
    ):
        assert scalar(clean_db, f"select count(*) from {table} where {column} = %s", session) == 0
    assert scalar(
        clean_db, "select status from ops.pipeline_runs where logical_date = %s", session
    ) == "failed"  # the failure callback recorded the run and wrote its report
