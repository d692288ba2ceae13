"""Simulator accounts of replays and backfills: carried across sessions, rewound on rerun."""

from __future__ import annotations

from datetime import date

import pytest

from quant.calendar import get_calendar
from quant.config import Settings, load_settings
from quant.data import ingest_bars
from quant.execution import generate_orders, pretrade_check, reconcile, submit_orders
from quant.pipeline import run_context
from quant.testing.db import query, scalar

pytestmark = pytest.mark.integration

SYMBOLS = 20


@pytest.fixture()
def small(clean_db: Settings) -> Settings:
    return load_settings(synthetic={"symbols": SYMBOLS}, history_sessions=40)


def _weights(session: date, symbols: list[str]) -> dict[str, float]:
    """Different target books on different sessions, so trades happen every day."""
    k = session.toordinal() % 3
    chosen = symbols[k : k + 10]
    return {s: 0.8 / len(chosen) for s in chosen}  # 8% each: under the 10% position limit


def _run(settings: Settings, sessions: list[date], prefix: str, latest: date, run_type: str) -> None:
    symbols = [r[0] for r in query(settings, "select distinct symbol from raw.bars order by symbol")]
    for day in sessions:
        run_id = f"{prefix}-{day.isoformat()}"
        generate_orders(run_context(day, run_id=run_id, settings=settings, run_type=run_type,
                                    targets=_weights(day, symbols), latest_session=latest))
        pretrade_check(run_context(day, run_id=run_id, settings=settings))
        submit_orders(run_context(day, run_id=run_id, settings=settings))
        reconcile(run_context(day, run_id=run_id, settings=settings))


def _book(settings: Settings, account: str) -> dict[str, object]:
    orders = query(
        settings,
        "select logical_date, symbol, side, qty_shares, status from ops.orders "
        "where account = %s order by logical_date, symbol, side", account,
    )
    fills = query(
        settings,
        "select symbol, side, qty_shares, round(price_usd::numeric, 8), "
        "round(commission_usd::numeric, 8), filled_at from ops.sim_fills "
        "where account = %s order by filled_at, symbol", account,
    )
    cash = scalar(
        settings, "select round(cash_usd::numeric, 6) from ops.sim_accounts where account = %s",
        account,
    )
    positions = query(
        settings,
        "select symbol, qty_shares from ops.sim_positions where account = %s "
        "and qty_shares <> 0 order by symbol", account,
    )
    return {"orders": orders, "fills": fills, "cash": cash, "positions": positions}


@pytest.mark.parametrize(("run_type", "account"), [("manual", "replay"), ("backfill", "backfill")])
def test_sim_account_when_range_run_twice_then_identical_orders_fills_and_cash(
    small: Settings, run_type: str, account: str
) -> None:
    cal = get_calendar(small.exchange)
    latest = cal.latest_closed_session()
    days = cal.sessions(cal.shift(latest, -6), cal.shift(latest, -2))
    ingest_bars(latest, settings=small)

    _run(small, days, "first", latest, run_type)
    first = _book(small, account)
    assert first["fills"], "orders of earlier sessions fill at the next session's auction"
    assert all(o[4] != "rejected" for o in first["orders"]), first["orders"]
    assert len({o[0] for o in first["orders"]}) == len(days)

    _run(small, days, "second", latest, run_type)
    assert _book(small, account) == first


def test_sim_account_when_middle_session_rerun_then_later_sessions_undone(small: Settings) -> None:
    cal = get_calendar(small.exchange)
    latest = cal.latest_closed_session()
    days = cal.sessions(cal.shift(latest, -6), cal.shift(latest, -2))
    ingest_bars(latest, settings=small)
    _run(small, days[:3], "head", latest, "manual")
    after_three = _book(small, "replay")
    _run(small, days[3:], "tail", latest, "manual")
    assert _book(small, "replay") != after_three

    _run(small, [days[2]], "again", latest, "manual")  # rerun the third session
    rerun = _book(small, "replay")
    assert rerun["orders"] == after_three["orders"]
    assert rerun["fills"] == after_three["fills"]
    assert rerun["cash"] == after_three["cash"]
    assert rerun["positions"] == after_three["positions"]
