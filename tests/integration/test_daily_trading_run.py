"""daily_trading runs for real: Airflow dag.test on the embedded PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest

from quant.calendar import get_calendar
from quant.config import Settings
from quant.testing.db import query, scalar

pytestmark = pytest.mark.integration


def _bars_for(settings: Settings, session: date) -> list[tuple]:
    return query(
        settings,
        """
        select symbol, date, provider, open, high, low, close, volume, ingested_at
        from raw.bars where date = %s order by symbol
        """,
        session,
    )


def test_daily_trading_when_run_twice_then_succeeds_and_rows_unchanged(
    clean_db: Settings, airflow_db: Settings, sidecar: object
) -> None:
    from quant.orchestration import run_dag
    from quant.report import report_path

    session = get_calendar(clean_db.exchange).latest_closed_session()
    first = run_dag(session, settings=clean_db)
    assert first.succeeded, first.task_states
    assert {"ingest_bars", "report", "dbt.stg_market__bars_model_build", "dbt.features_model_build"} <= set(
        first.task_states
    )
    assert all(state == "success" for state in first.task_states.values()), first.task_states
    rows = _bars_for(clean_db, session)
    assert len(rows) >= clean_db.synthetic.symbols - 2  # listings/delistings aside
    page = report_path("daily_trading", first.run_id, clean_db)
    assert page.exists()
    assert session.isoformat() in page.read_text()

    weights = scalar(clean_db, "select count(*) from ops.target_weights where session_date = %s", session)
    orders = scalar(clean_db, "select count(*) from ops.orders where logical_date = %s", session)
    assert weights > 0 and orders > 0
    assert scalar(clean_db, "select count(*) from ops.dq_results where session_date = %s and not success "
                  "and severity = 'blocking'", session) == 0

    second = run_dag(session, settings=clean_db)
    assert second.succeeded, second.task_states
    assert _bars_for(clean_db, session) == rows  # same values, same ingestion stamps
    assert scalar(clean_db, "select count(*) from ops.orders where logical_date = %s", session) == orders


def test_daily_trading_when_run_then_dbt_models_built_for_the_session(
    airflow_db: Settings,
) -> None:
    from quant.orchestration import run_dag

    cal = get_calendar(airflow_db.exchange)
    session = cal.previous_session(cal.latest_closed_session())
    result = run_dag(session, settings=airflow_db)
    assert result.succeeded, result.task_states
    staged = scalar(
        airflow_db, "select count(*) from staging.stg_market__bars where session_date = %s", session
    )
    features, last = query(
        airflow_db,
        "select count(*), max(session_date) from marts.features where session_date <= %s",
        session,
    )[0]
    last_label = scalar(airflow_db, "select max(session_date) from marts.labels")
    assert staged == len(_bars_for(airflow_db, session)) > 0
    assert features > 0 and last == session
    assert last_label == session  # built as of the session: nothing later is kept
