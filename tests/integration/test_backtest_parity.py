"""The backtest runs the DAG's code: same target weights and orders as daily_trading runs.

Five past sessions run through the ``daily_trading`` DAG (Airflow ``dag.test``, as
replays of past dates: the simulator account ``replay`` carried across sessions),
then through :func:`quant.backtest.run_backtest` on its own backfill account. The
target weights (session, symbol, weight) and orders (session, symbol, side, qty)
must be identical. A second backtest of the same range, with the baselines, a
commission in basis points and square-root impact, must reproduce the strategy's
orders and simulated equity, and charge those costs on what the simulator filled.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from quant.config import Settings
from quant.testing.db import query, truncate_pipeline_tables
from quant.testing.marts import synthetic_marts

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def parity(pg_settings: Settings, airflow_db: Settings) -> dict[str, Any]:
    from quant.backtest import run_backtest
    from quant.calendar import get_calendar
    from quant.execution import choose_broker, order_namespace
    from quant.orchestration import run_dag

    settings = pg_settings
    truncate_pipeline_tables(settings)
    cal = get_calendar(settings.exchange)
    latest = cal.latest_closed_session()
    days = cal.sessions(cal.shift(latest, -6), cal.shift(latest, -2))
    assert len(days) == 5 and latest not in days
    # as `quant demo`: ingest and build the (point-in-time) marts once, then one DAG run per
    # session with its dbt tasks marked done
    synthetic_marts(settings, days[-1], start=cal.shift(days[0], -(settings.history_sessions - 1)),
                    fresh=False)
    for day in days:
        result = run_dag(day, settings=settings, mark_success_pattern=r"dbt\..*")
        assert result.succeeded, (day, result.task_states)
    choice = choose_broker(settings, session=days[0], run_type="manual", latest_session=latest)
    namespace = order_namespace("daily_trading", choice.account,
                                default_account=choice.is_default_account)
    dag_weights = query(
        settings,
        "select session_date, symbol, weight from ops.target_weights "
        "where session_date between %s and %s order by 1, 2", days[0], days[-1],
    )
    dag_orders = query(
        settings,
        "select logical_date, symbol, side, qty_shares from ops.orders "
        "where namespace = %s and logical_date between %s and %s order by 1, 2, 3",
        namespace, days[0], days[-1],
    )
    first = run_backtest(days[0], days[-1], settings=settings, baselines=False)
    return {"days": days, "dag_weights": dag_weights, "dag_orders": dag_orders, "first": first,
            "settings": settings}


def _rows(frame: Any, columns: list[str]) -> list[tuple]:
    rows = [tuple(r) for r in frame[columns].itertuples(index=False)]
    return sorted((r[0], *r[1:]) for r in rows)


def test_backtest_when_same_sessions_as_dag_runs_then_identical_weights_and_orders(
    parity: dict[str, Any],
) -> None:
    result = parity["first"]
    assert result.sessions == parity["days"]
    weights = _rows(result.strategy.weights, ["session", "symbol", "weight"])
    orders = _rows(result.strategy.orders, ["session", "symbol", "side", "qty_shares"])
    dag_weights = sorted((d, s, float(w)) for d, s, w in parity["dag_weights"])
    dag_orders = sorted((d, s, side, float(q)) for d, s, side, q in parity["dag_orders"])
    assert len(dag_orders) > 0 and {r[0] for r in dag_orders} > {parity["days"][0]}
    assert weights == dag_weights
    assert orders == dag_orders


def _impact_inputs_by_hand(settings: Settings, session: date, symbol: str) -> tuple[float, float]:
    """Daily volatility and ADV (shares) of ``symbol`` over the 20 sessions up to ``session``."""
    (row,) = query(
        settings,
        "with days as (select distinct session_date from intermediate.int_prices_adjusted "
        "where session_date <= %s order by 1 desc limit 20) "
        "select stddev_samp(total_return), avg(volume_shares) "
        "from intermediate.int_prices_adjusted join days using (session_date) where symbol = %s",
        session, symbol,
    )
    return float(row[0]), float(row[1])


def test_backtest_when_rerun_with_baselines_and_costs_then_same_orders_and_costs_charged(
    parity: dict[str, Any],
) -> None:
    import math

    from quant.backtest import CostModel, run_backtest
    from quant.calendar import get_calendar

    settings: Settings = parity["settings"]
    days: list[date] = parity["days"]
    first = parity["first"]
    costs = CostModel.from_settings(settings).with_(commission_bps=10.0, impact_coefficient=0.5)
    second = run_backtest(days[0], days[-1], settings=settings, costs=costs, prepare=False,
                          baselines=True)
    assert set(second.strategies) == {"strategy", "equal_weight", "top_k"}
    columns = ["session", "symbol", "side", "qty_shares"]
    assert _rows(second.strategy.orders, columns) == _rows(first.strategy.orders, columns)
    # the rerun rewinds the account (cash flows reversed): equal up to float rounding
    assert second.strategy.gross_equity.to_dict() == pytest.approx(
        first.strategy.gross_equity.to_dict(), rel=1e-12
    )
    # per fill (ops.fills): 10 bps of the notional plus 0.5 x sigma x sqrt(qty / ADV) of it,
    # sigma and ADV over the 20 sessions up to the session the order was generated
    fills = query(
        settings,
        "select filled_at, symbol, qty_shares, price_usd from ops.fills where account = %s",
        second.strategy.account,
    )
    cal = get_calendar(settings.exchange)
    opens = {cal.open_at(d): d for d in days}
    paid = dict.fromkeys(days, 0.0)
    for filled_at, symbol, qty, price in fills:
        day = opens[filled_at]
        sigma, adv = _impact_inputs_by_hand(settings, cal.previous_session(day), symbol)
        notional = float(qty) * float(price)
        paid[day] += notional * 10.0 / 1e4 + 0.5 * sigma * math.sqrt(float(qty) / adv) * notional
    assert sum(paid.values()) > 0
    charged = 0.0
    for day in days:
        charged += paid[day]
        assert second.strategy.equity[day] == pytest.approx(
            second.strategy.gross_equity[day] - charged, rel=1e-9
        )
    figures = second.figures()
    assert figures["baselines"]["equal_weight"]["orders"] > 0
    assert figures["accounting_costs_usd"] == pytest.approx(sum(paid.values()), rel=1e-9)
    # slippage: each fill 5 bps away from the auction price; shortfall: against the price its
    # order was sized at (ops.orders, joined by client order id)
    bps = costs.slippage_bps / 1e4
    joined = query(
        settings,
        "select f.side, f.qty_shares, f.price_usd, o.ref_price_usd from ops.fills f "
        "join ops.orders o using (client_order_id) where f.account = %s",
        second.strategy.account,
    )
    assert len(joined) == len(fills) > 0
    sign = {"buy": 1.0, "sell": -1.0}
    slippage = sum(float(q) * float(p) * (1 - 1 / (1 + sign[s] * bps)) * sign[s]
                   for s, q, p, _ in joined)
    shortfall = sum(sign[s] * float(q) * (float(p) - float(ref)) for s, q, p, ref in joined)
    assert figures["slippage_usd"] == pytest.approx(slippage, rel=1e-9) and slippage > 0
    assert figures["shortfall_usd"] == pytest.approx(shortfall, rel=1e-9)
    # exposure: the positions recorded at each close against the cash the run recorded
    # (ops.execution_runs): net = (equity - cash) / equity; a long-only book's gross = net
    runs = query(
        settings,
        "select logical_date, equity_usd, cash_usd from ops.execution_runs "
        "where account = %s and not dry_run order by 1",
        second.strategy.account,
    )
    assert [r[0] for r in runs] == days
    held = second.strategy.exposure
    for day, equity_usd, cash_usd in runs:
        invested = (float(equity_usd) - float(cash_usd)) / float(equity_usd)
        assert held.loc[day, "net"] == pytest.approx(invested, rel=1e-9, abs=1e-12)
        assert held.loc[day, "gross"] == pytest.approx(held.loc[day, "net"])
    assert figures["gross_exposure"] > 0
    last = second.strategy.positions[second.strategy.positions["session"] == days[-1]]
    books = query(settings, "select symbol, qty_shares from ops.positions "
                  "where account = %s and qty_shares <> 0", second.strategy.account)
    assert dict(zip(last["symbol"], last["qty_shares"], strict=True)) == {
        s: float(q) for s, q in books}


def test_quant_backtest_when_json_then_figures_on_last_line_and_tear_sheet_written(
    parity: dict[str, Any],
) -> None:
    import json
    import subprocess
    import sys
    from pathlib import Path

    days: list[date] = parity["days"]
    quant = Path(sys.executable).with_name("quant")
    proc = subprocess.run(
        [str(quant), "backtest", "--start", days[0].isoformat(), "--end", days[-1].isoformat(),
         "--optimizer", "hrp", "--trials", "5", "--json"],
        capture_output=True, text=True, check=False, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures["optimizer"] == "hrp" and figures["n_trials"] == 5
    assert figures["sessions"] == len(days)
    assert set(figures["baselines"]) == {"equal_weight", "top_k"}
    for key in ("cagr", "annualised_volatility", "sharpe", "sortino", "max_drawdown", "calmar",
                "turnover", "hit_rate", "psr", "dsr"):
        assert key in figures and key in figures["baselines"]["top_k"], key
    # D's scores meet the return from D+1's open to D+2's open: the last two sessions have none
    assert figures["ic"]["n"] == len(days) - 2
    assert set(figures["ic_decay"]) == {"1", "5", "10", "20"}
    assert figures["ic_decay"]["1"]["sessions"] == len(days) - 2
    assert figures["ic_decay"]["5"]["sessions"] == 0  # 5 sessions after D+1: past the range
    assert "icir" in figures and "not_promoted_seconds" in figures["model_selection"]
    if figures["psr"] is not None:
        assert figures["dsr"] <= figures["psr"]  # five trials deflate the probability
    page = Path(figures["tear_sheet"]).read_text()
    assert page.count("<svg") >= 4
    assert "Deflated Sharpe ratio" in page and days[1].isoformat() in page
    # the pyfolio / quantstats sections, with the figures' values
    drawdowns = page[page.index("<h3>Worst drawdowns</h3>"):page.index("<h2>Rolling Sharpe")]
    worst = figures["worst_drawdowns"]
    if figures["max_drawdown"] > 0:
        assert worst[0]["depth"] == pytest.approx(figures["max_drawdown"])
        assert f"{100 * figures['max_drawdown']:.2f} %" in drawdowns
    else:
        assert worst == [] and "No drawdown" in drawdowns
    heat = page[page.index('<table class="heat">'):]
    assert f"<th>{days[-1].year}</th>" in heat[:heat.index("</table>")]
    assert "Fewer than 21 daily returns: no rolling figures" in page  # five sessions
    assert "Return distribution" in page and "Gross exposure" in page
    assert figures["gross_exposure"] > 0 and figures["slippage_usd"] > 0
    costs = page[page.index('<table class="costs">'):]
    costs = costs[:costs.index("</table>")]
    for name in ("strategy", "equal_weight", "top_k"):
        assert f"<th>{name}</th>" in costs
    assert "<h2>Corporate events</h2>" in page and "<h3>IC decay</h3>" in page
