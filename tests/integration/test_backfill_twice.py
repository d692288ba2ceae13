"""Running the same range of past sessions twice gives the same weights, orders and fills;
the backfill command of the Airflow CLI accepts the DAG's range."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from quant.calendar import get_calendar
from quant.config import Settings
from quant.testing.db import query
from quant.testing.marts import synthetic_marts

pytestmark = pytest.mark.integration

SESSIONS = 10


def _snapshot(settings: Settings) -> dict[str, list[tuple]]:
    weights = query(
        settings,
        "select session_date, symbol, round(weight::numeric, 10) from ops.target_weights "
        "order by 1, 2",
    )
    orders = query(
        settings,
        "select logical_date, client_order_id, symbol, side, qty_shares, status, "
        "reject_reasons from ops.orders where account = 'replay' order by 1, 2",
    )
    fills = query(
        settings,
        "select client_order_id, symbol, side, qty_shares, round(price_usd::numeric, 8), "
        "round(commission_usd::numeric, 8), filled_at from ops.sim_fills "
        "where account = 'replay' order by filled_at, client_order_id",
    )
    return {"weights": weights, "orders": orders, "fills": fills}


def test_past_sessions_when_run_twice_then_identical_weights_orders_and_fills(
    clean_db: Settings, airflow_db: Settings
) -> None:
    from quant.orchestration import run_dag

    cal = get_calendar(clean_db.exchange)
    last = cal.previous_session(cal.latest_closed_session())  # past sessions only: simulator
    days = cal.sessions(cal.shift(last, -(SESSIONS - 1)), last)
    # clean_db emptied raw and ops; the dbt schemas are built over as they are
    synthetic_marts(clean_db, last, start=cal.shift(days[0], -(clean_db.history_sessions - 1)),
                    fresh=False)

    def run_all() -> None:
        for day in days:
            result = run_dag(day, settings=clean_db, mark_success_pattern=r"dbt\..*")
            assert result.succeeded, (day, result.task_states)

    run_all()
    first = _snapshot(clean_db)
    assert len({w[0] for w in first["weights"]}) == SESSIONS
    assert len({o[0] for o in first["orders"]}) == SESSIONS
    assert first["fills"], "orders fill at the next session's auction"

    run_all()
    second = _snapshot(clean_db)
    assert second == first


def test_backfill_cli_when_dry_run_then_lists_the_sessions(airflow_db: Settings) -> None:
    cal = get_calendar(airflow_db.exchange)
    last = cal.previous_session(cal.latest_closed_session())
    first = cal.shift(last, -4)
    env = dict(os.environ)
    reserialize = subprocess.run(
        [sys.executable, "-m", "quant.cli", "airflow", "dags", "reserialize"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert reserialize.returncode == 0, reserialize.stdout + reserialize.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "quant.cli", "airflow", "backfill", "create",
         "--dag-id", "daily_trading", "--from-date", first.isoformat(),
         "--to-date", last.isoformat(), "--reprocess-behavior", "completed", "--dry-run"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    for day in cal.sessions(first, last):
        assert day.isoformat() in out, (day, out[-3000:])
