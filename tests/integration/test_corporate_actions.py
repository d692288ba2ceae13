"""Corporate actions and dead symbols in the simulator's books, through the execution stages.

A small market of raw bars (unadjusted, as brokers deliver them) with a 4-for-1
split, a cash dividend, a delisting and a symbol whose bars stop, run session by
session as a backfill (generate, check, submit, reconcile), then rerun.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from quant.calendar import get_calendar
from quant.config import Settings, load_settings
from quant.db import connect
from quant.execution import (
    Order,
    SimBroker,
    generate_orders,
    pretrade_check,
    reconcile,
    submit_orders,
)
from quant.pipeline import run_context
from quant.report import write_run_report
from quant.testing.db import execute, query, scalar
from quant.typing import CorporateAction, OrderType, TimeInForce

pytestmark = pytest.mark.integration

BACKFILL = "corp"
ACCOUNT = f"backfill-{BACKFILL}"
SPLIT, DIVIDEND, DELISTED, DEAD, STEADY = "SPL", "DIV", "DEL", "DEAD", "KEEP"
SYMBOLS = (SPLIT, DIVIDEND, DELISTED, DEAD, STEADY)
MISSING = 3  # close_after_missing_sessions
DIVIDEND_USD = 0.5


@pytest.fixture()
def market(clean_db: Settings) -> tuple[Settings, list[date]]:
    """Ten sessions of bars: SPL splits 4-for-1 and DIV pays 0.50 on the third session,
    DEL is delisted on the fourth, DEAD's bars stop after the second."""
    settings = load_settings(
        execution={"min_order_notional_usd": 40_000, "close_after_missing_sessions": MISSING},
    )
    cal = get_calendar(settings.exchange)
    days = cal.sessions(date(2024, 3, 4), date(2024, 3, 15))[:10]
    s = days
    rows = []
    for i, day in enumerate(s):
        prices = {
            SPLIT: 400.0 + i if i < 2 else 100.25 + i / 4,  # a 4:1 split on s[2], then +1/4 a day
            DIVIDEND: 50.0 if i < 2 else 50.0 - DIVIDEND_USD,  # drops by the dividend on s[2]
            DELISTED: 33.0,
            DEAD: 20.0,
            STEADY: 60.0,
        }
        for symbol, close in prices.items():
            if symbol == DELISTED and i > 3 or symbol == DEAD and i > 1:
                continue
            rows.append((symbol, day, "csv", close, close, close, close, 5_000_000))
    for row in rows:
        execute(settings, "insert into raw.bars (symbol, date, provider, open, high, low, close, "
                "volume) values (%s, %s, %s, %s, %s, %s, %s, %s)", *row)
    for k, symbol in enumerate(SYMBOLS):
        execute(settings, "insert into raw.symbols (symbol, provider, sector, listed_at, "
                "delisted_at) values (%s, 'csv', %s, %s, %s)",
                symbol, f"Sector{k}", date(2020, 1, 2), s[3] if symbol == DELISTED else None)
    execute(settings, "insert into raw.corporate_actions (symbol, ex_date, action_type, provider, "
            "split_ratio) values (%s, %s, 'split', 'csv', 4.0)", SPLIT, s[2])
    execute(settings, "insert into raw.corporate_actions (symbol, ex_date, action_type, provider, "
            "dividend_usd) values (%s, %s, 'dividend', 'csv', %s)", DIVIDEND, s[2], DIVIDEND_USD)
    return settings, days


def _run(settings: Settings, days: list[date], prefix: str) -> dict[date, dict]:
    latest = get_calendar(settings.exchange).latest_closed_session()
    weights = dict.fromkeys(SYMBOLS, 0.08)
    out = {}
    for day in days:
        run_id = f"{prefix}-{day.isoformat()}"
        out[day] = generate_orders(run_context(day, run_id=run_id, settings=settings,
                                               run_type="backfill", backfill_id=BACKFILL,
                                               targets=weights, latest_session=latest))
        pretrade_check(run_context(day, run_id=run_id, settings=settings))
        submit_orders(run_context(day, run_id=run_id, settings=settings))
        reconcile(run_context(day, run_id=run_id, settings=settings))  # raises on a break
    return out


def _positions(settings: Settings) -> dict[str, tuple[float, float]]:
    return {r[0]: (r[1], r[2]) for r in query(
        settings, "select symbol, qty_shares, avg_price_usd from ops.sim_positions "
        "where account = %s and qty_shares <> 0", ACCOUNT)}


def _book(settings: Settings) -> dict[str, object]:
    return {
        "cash": scalar(settings, "select round(cash_usd::numeric, 6) from ops.sim_accounts "
                       "where account = %s", ACCOUNT),
        "positions": sorted(_positions(settings).items()),
        "events": query(settings, "select symbol, session_date, event_type, qty_before_shares, "
                        "qty_after_shares, round(cash_usd::numeric, 6) from ops.corporate_events "
                        "where account = %s order by session_date, symbol, event_type", ACCOUNT),
        "fills": query(settings, "select symbol, side, qty_shares, price_usd, filled_at "
                       "from ops.sim_fills where account = %s order by filled_at, symbol", ACCOUNT),
    }


def test_split_when_position_held_then_value_kept_avg_cost_scaled(market) -> None:  # noqa: ANN001
    settings, s = market
    _run(settings, s[:2], "a")
    before = _positions(settings)
    qty, avg = before[SPLIT]
    assert qty > 0
    equity_1 = scalar(settings, "select equity_usd from ops.execution_runs where logical_date = %s",
                      s[1])
    _run(settings, s[2:3], "a")
    after = _positions(settings)
    assert after[SPLIT][0] == 4 * qty
    assert after[SPLIT][1] == pytest.approx(avg / 4, rel=1e-12)
    assert scalar(settings, "select count(*) from ops.sim_fills where account = %s and "
                  "filled_at >= %s", ACCOUNT, get_calendar(settings.exchange).open_at(s[2])) == 0
    equity_2 = scalar(settings, "select equity_usd from ops.execution_runs where logical_date = %s",
                      s[2])
    # the only price moves of the day: SPL's, on split-adjusted terms (DIV's drop is paid back)
    close_1, close_2 = 400.0 + 1, 100.25 + 2 / 4
    move = 4 * qty * (close_2 - close_1 / 4)
    assert equity_2 - equity_1 == pytest.approx(move, abs=0.005)
    # the pipeline's own book agrees (reconcile raised no break) and has the same average cost
    ledger_avg = scalar(settings, "select avg_price_usd from ops.positions where account = %s "
                        "and symbol = %s", ACCOUNT, SPLIT)
    assert ledger_avg == pytest.approx(avg / 4, rel=1e-12)


def test_dividend_when_ex_date_then_cash_credited_once_as_event(market) -> None:  # noqa: ANN001
    settings, s = market
    _run(settings, s[:3], "a")
    held = _positions(settings)[DIVIDEND][0]
    events = query(settings, "select session_date, cash_usd from ops.corporate_events "
                   "where account = %s and event_type = 'dividend'", ACCOUNT)
    assert events == [(s[2], pytest.approx(held * DIVIDEND_USD))]


def test_delisted_and_dead_symbols_when_held_then_closed_and_never_again(market) -> None:  # noqa: ANN001
    settings, s = market
    runs = _run(settings, s, "a")
    closings = query(settings, "select symbol, session_date, event_type, price_usd, "
                     "qty_after_shares from ops.corporate_events where account = %s "
                     "and event_type in ('delisting', 'dead_symbol') order by symbol", ACCOUNT)
    # DEAD's last bar is on s[1]: closed once MISSING sessions have none, at its last close
    assert closings == [(DEAD, s[1 + MISSING], "dead_symbol", 20.0, 0.0),
                        (DELISTED, s[3], "delisting", 33.0, 0.0)]
    # the closings were reported by the session's settlement
    closed = [e for r in runs.values() for e in r["settled"]["corporate_events"]
              if e["type"] in ("delisting", "dead_symbol")]
    assert sorted(e["symbol"] for e in closed) == [DEAD, DELISTED]
    positions = _positions(settings)
    assert DELISTED not in positions and DEAD not in positions
    assert query(settings, "select symbol from ops.positions where account = %s and "
                 "symbol in (%s, %s) and qty_shares <> 0", ACCOUNT, DELISTED, DEAD) == []
    # the run report lists the events the account met
    page = write_run_report(dag_id="daily_trading", run_id=f"a-{s[-1].isoformat()}",
                            session=s[-1], stages={}, settings=settings).read_text()
    shown = page[page.index("Corporate events"):]
    for symbol, kind in ((SPLIT, "split"), (DIVIDEND, "dividend"), (DELISTED, "delisting"),
                         (DEAD, "dead_symbol")):
        assert f"<td>{symbol}</td><td>{kind}</td>" in shown.replace("\n", ""), kind


def test_books_when_sessions_rerun_then_actions_applied_once_and_equity_explained(
    market,  # noqa: ANN001
) -> None:
    settings, s = market
    _run(settings, s, "a")
    first = _book(settings)
    _run(settings, s[2:], "b")  # reruns rewind the account to the start of s[2] first
    second = _book(settings)
    assert second == first
    counts = query(settings, "select session_date, event_type, count(*) from ops.corporate_events "
                   "where account = %s group by 1, 2 order by 1, 2", ACCOUNT)
    assert all(c == 1 for *_, c in counts) and len(counts) == 4
    # cash: the initial cash, the fills (price and commission) and the corporate events
    initial = settings.execution.sim_initial_cash_usd
    traded = scalar(settings, "select coalesce(sum(case when side = 'buy' then -1 else 1 end "
                    "* qty_shares * price_usd - commission_usd), 0) from ops.fills "
                    "where account = %s", ACCOUNT)
    events = scalar(settings, "select coalesce(sum(cash_usd), 0) from ops.corporate_events "
                    "where account = %s", ACCOUNT)
    cash = scalar(settings, "select cash_usd from ops.sim_accounts where account = %s", ACCOUNT)
    assert round(initial + traded + events, 2) == round(cash, 2)
    # positions: the fills' shares, scaled by the splits, less the closings
    book = {r[0]: r[1] for r in query(settings, "select symbol, qty_shares from ops.positions "
                                      "where account = %s and qty_shares <> 0", ACCOUNT)}
    assert book == {k: v[0] for k, v in _positions(settings).items()}


def test_sim_when_odd_lot_split_and_short_dividend_then_cash_in_lieu_and_debit_once(
    clean_db: Settings,
) -> None:
    t0 = datetime(2026, 11, 2, 14, 30, tzinfo=UTC)
    conn = connect(clean_db)
    try:
        broker = SimBroker(conn, account="odd", initial_cash_usd=100_000.0, slippage_bps=0.0,
                           commission_per_share_usd=0.0)
        broker.submit_many([
            Order(client_order_id="b", symbol="ODD", side="buy", qty_shares=7,
                  time_in_force=TimeInForce.OPG),
            Order(client_order_id="s", symbol="SHT", side="sell", qty_shares=10,
                  time_in_force=TimeInForce.OPG),
        ])
        broker.fill_auction({"ODD": 30.0, "SHT": 20.0}, at=t0)
        broker.submit(Order(client_order_id="rest", symbol="ODD", side="buy", qty_shares=5,
                            order_type=OrderType.LIMIT, limit_price_usd=29.0,
                            time_in_force=TimeInForce.DAY))
        cash = broker.account().cash_usd
        day = date(2026, 11, 3)
        at = t0 + timedelta(days=1)
        actions = [
            CorporateAction(symbol="ODD", action_type="split", session=day, effective_at=at,
                            split_ratio=1.5, price_usd=30.0 / 1.5),
            CorporateAction(symbol="SHT", action_type="dividend", session=day, effective_at=at,
                            dividend_usd=0.4),
        ]
        events = broker.apply_corporate_actions(actions)
        assert [(e.action.symbol, e.cash_usd) for e in events] == [
            ("ODD", pytest.approx(0.5 * 20.0)),  # 10.5 shares: 10 kept, half a share in cash
            ("SHT", pytest.approx(-10 * 0.4)),  # the short pays the dividend
        ]
        held = {p.symbol: p for p in broker.positions()}
        assert held["ODD"].qty_shares == 10 and held["ODD"].avg_price_usd == pytest.approx(20.0)
        assert held["SHT"].qty_shares == -10
        assert broker.account().cash_usd == pytest.approx(cash + 10.0 - 4.0, abs=1e-9)
        resting = broker.order_by_client_id("rest")
        assert resting.qty_shares == 7 and resting.limit_price_usd == pytest.approx(29.0 / 1.5)
        # the same session's actions again (a second settlement): nothing applies twice
        assert broker.apply_corporate_actions(actions) == []
        assert broker.account().cash_usd == pytest.approx(cash + 6.0, abs=1e-9)
        assert scalar(clean_db, "select count(*) from ops.corporate_events where account = 'odd'") == 2
    finally:
        conn.close()
