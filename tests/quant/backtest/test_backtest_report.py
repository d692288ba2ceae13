"""Backtest result, figures and tear sheet on a small hand-made result; argument checks."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from quant.backtest import (
    RETRAIN_COLUMNS,
    BacktestResult,
    CostModel,
    StrategyResult,
    render_tear_sheet,
    retrain_row,
    run_backtest,
    write_tear_sheet,
)
from quant.config import Settings
from quant.exceptions import BacktestError, ConfigurationError

DAYS = [date(2025, 3, 3) + timedelta(days=i) for i in range(4)]


def _strategy(name: str, equity: list[float]) -> StrategyResult:
    series = pd.Series(equity, index=DAYS, dtype=float)
    fills = pd.DataFrame(
        [(DAYS[1], "AAA", "buy", 100.0, 50.0, 0.5), (DAYS[2], "AAA", "sell", 40.0, 51.0, 0.2)],
        columns=["session", "symbol", "side", "qty_shares", "price_usd", "commission_usd"],
    )
    return StrategyResult(
        name=name, account=f"acct-{name}", gross_equity=series, equity=series,
        costs_usd=pd.Series(0.0, index=DAYS),
        weights=pd.DataFrame([(DAYS[0], "AAA", 0.5)], columns=["session", "symbol", "weight"]),
        orders=pd.DataFrame([(DAYS[0], "AAA", "buy", 100.0, "filled")],
                            columns=["session", "symbol", "side", "qty_shares", "status"]),
        fills=fills,
    )


def _result() -> BacktestResult:
    return BacktestResult(
        backtest_id="abc", sessions=DAYS, optimizer="mean_variance", provider="synthetic",
        n_trials=3, costs=CostModel(), periods_per_year=252,
        strategies={"strategy": _strategy("strategy", [10_000, 10_100, 10_050, 10_200]),
                    "equal_weight": _strategy("equal_weight", [10_000, 10_000, 10_000, 10_000])},
        ic=pd.DataFrame([(DAYS[0], 0.1, 0.2), (DAYS[1], -0.05, float("nan"))],
                        columns=["session", "ic", "rank_ic"]),
        retrains=pd.DataFrame([(DAYS[0], "retrained", "no_champion", 1),
                               (DAYS[1], "skipped", "not_due", 1)],
                              columns=["session", "action", "reason", "champion_model_id"]),
    )


def test_figures_when_baseline_warned_then_warnings_listed_per_strategy() -> None:
    message = "top_k (20) is not below the 20 names eligible: top_k holds every name"
    result = dataclasses.replace(_result(), warnings={"top_k": [message]})

    figures = json.loads(json.dumps(result.figures()))

    assert figures["warnings"] == {"top_k": [message]}
    assert _result().figures()["warnings"] == {}


def test_figures_when_flat_baseline_then_json_safe_with_none_for_undefined() -> None:
    figures = _result().figures()
    text = json.dumps(figures, allow_nan=False)  # raises on NaN or infinity
    assert json.loads(text)["baselines"]["equal_weight"]["sharpe"] is None
    assert figures["total_return"] == pytest.approx(0.02)
    assert figures["max_drawdown"] == pytest.approx(50 / 10_100)
    assert figures["retrains"] == {"no_champion": 1}
    assert figures["ic"]["n"] == 2 and figures["rank_ic"]["n"] == 1


def test_turnover_when_known_fills_then_half_traded_over_previous_equity() -> None:
    s = _result().strategy
    # D1: 100 x 50 traded on 10,000 of equity; D2: 40 x 51 on 10,100
    assert s.daily_turnover.to_list() == pytest.approx([5_000 / 2 / 10_000, 2_040 / 2 / 10_100, 0.0])
    figures = _result().figures()
    assert figures["turnover"] == pytest.approx(252 * (0.25 + 2_040 / 20_200) / 3)


def test_tear_sheet_when_rendered_then_plots_figures_and_ic_series(tmp_path: object) -> None:
    page = render_tear_sheet(_result())
    # equity, drawdown, return distribution, exposure, IC, turnover, cumulative costs
    assert page.count("<svg") == 7
    assert "Fewer than 21 daily returns: no rolling figures" in page
    assert "Deflated Sharpe ratio" in page and "3 configuration(s)" in page
    assert "2025-03-04" in page  # the IC series lists its sessions
    assert "http://" not in page.replace("http://www.w3.org", "")  # no external asset


def test_write_tear_sheet_when_settings_then_under_reports(tmp_path: object) -> None:
    settings = Settings(home=tmp_path)
    path = write_tear_sheet(_result(), settings)
    assert path.is_file() and path.parent.parent == settings.reports_dir / "backtest"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"start": "2025-03-10", "end": "2025-03-07"}, BacktestError, "before it starts"),
        ({"start": "2025-03-08", "end": "2025-03-09"}, BacktestError, "no XNYS session"),
        ({"start": "2025-03-03", "end": "2099-01-02"}, BacktestError, "latest closed session"),
        ({"start": "2025-03-03", "end": "2025-03-07", "optimizer": "magic"}, ConfigurationError,
         "unknown optimizer"),
        ({"start": "2025-03-03", "end": "2025-03-07", "provider": "nope"}, ConfigurationError,
         "provider"),
        ({"start": "2025-03-03", "end": "2025-03-07", "n_trials": 0}, ConfigurationError,
         "n_trials"),
    ],
)
def test_run_backtest_when_bad_arguments_then_refused_before_any_work(
    kwargs: dict, error: type, match: str, tmp_path: object
) -> None:
    settings = Settings(home=tmp_path, database_url="postgresql://nobody@nowhere.invalid/none")
    with pytest.raises(error, match=match):
        run_backtest(settings=settings, **kwargs)


def test_tear_sheet_when_corporate_events_then_listed_per_strategy() -> None:
    result = _result()
    events = pd.DataFrame(
        [(DAYS[2], "AAA", "split", 4.0, None, 12.5, 60.0, 240.0, 50.0, 12.5, 0.0, None),
         (DAYS[3], "AAA", "delisting", None, None, 12.0, 240.0, 0.0, 12.5, 0.0, 2_880.0,
          "delisted_at 2025-03-06")],
        columns=["session_date", "symbol", "event_type", "split_ratio", "dividend_usd",
                 "price_usd", "qty_before_shares", "qty_after_shares", "avg_price_before_usd",
                 "avg_price_after_usd", "cash_usd", "detail"],
    )
    strategies = dict(result.strategies)
    strategies["strategy"] = StrategyResult(
        **{f: getattr(result.strategy, f) for f in StrategyResult.__dataclass_fields__
           if f != "corporate_events"},
        corporate_events=events,
    )
    page = render_tear_sheet(BacktestResult(**{
        **{f: getattr(result, f) for f in BacktestResult.__dataclass_fields__},
        "strategies": strategies,
    }))
    section = page[page.index("<h2>Corporate events</h2>"):]
    assert "split" in section and "delisted_at 2025-03-06" in section and "2,880.00" in section
    assert "No split, dividend or closing" in render_tear_sheet(_result())


def _decisions() -> list[dict]:
    """The retrain stage's summaries of four sessions, as retrain_model returns them."""
    base = {"drift_threshold": 0.25, "champion_model_id": 1}
    return [
        {**base, "action": "retrained", "reason": "no_champion", "promoted": True,
         "promotion_code": "no_champion", "drift_psi": None, "seconds": 3.0},
        {**base, "action": "retrained", "reason": "drift", "promoted": False,
         "promotion_code": "not_better_on_window", "drift_psi": 0.4, "seconds": 2.5},
        {**base, "action": "skipped", "reason": "not_due", "drift_psi": 0.1, "seconds": 0.1},
        {**base, "action": "retrained", "reason": "scheduled", "promoted": True,
         "promotion_code": "better_on_window", "drift_psi": "inf", "seconds": 2.0},
    ]


def test_figures_when_retrains_and_ic_decay_then_promotions_cost_and_icir_reported() -> None:
    ic = pd.DataFrame(
        {
            "session": DAYS[:3],
            "ic": [0.1, 0.2, 0.0],
            "rank_ic": [0.1, 0.3, 0.2],
            "ic_5d": [0.05, 0.1, 0.0],
            "rank_ic_5d": [0.0, 0.1, 0.05],
        }
    )
    retrains = pd.DataFrame(
        [retrain_row(day, d) for day, d in zip(DAYS, _decisions(), strict=True)],
        columns=list(RETRAIN_COLUMNS),
    )
    result = BacktestResult(**{**_result_fields(), "ic": ic, "retrains": retrains})
    figures = result.figures()
    json.dumps(figures, allow_nan=False)
    assert figures["icir"] == pytest.approx(0.2 / 0.1)  # rank IC mean 0.2, sd 0.1
    assert set(figures["ic_decay"]) == {"1", "5"}
    assert figures["ic_decay"]["5"]["rank_ic"] == pytest.approx(0.05)
    assert figures["ic_decay"]["5"]["icir"] == pytest.approx(0.05 / 0.05)
    selection = figures["model_selection"]
    assert selection["retrains_by_reason"] == {"drift": 1, "no_champion": 1, "scheduled": 1}
    assert selection["promotions_by_reason"] == {"no_champion": 1, "scheduled": 1}
    assert selection["not_promoted"] == 1
    assert selection["not_promoted_by_code"] == {"not_better_on_window": 1}
    assert selection["not_promoted_seconds"] == pytest.approx(2.5)
    assert selection["retrain_seconds"] == pytest.approx(7.5)
    assert selection["drift_fired_sessions"] == 2  # 0.4 and an input gone (inf)
    assert selection["drift_fired_share"] == pytest.approx(0.5)
    page = render_tear_sheet(result)
    assert "IC decay" in page and "Model selection" in page
    assert "1 not_better_on_window" in page


def _result_fields() -> dict:
    r = _result()
    return {name: getattr(r, name) for name in BacktestResult.__dataclass_fields__}


def _long_result() -> BacktestResult:
    """80 sessions from 2025-01-02 (weekdays): a strategy that rises, falls 20 % and recovers,
    holding 100 AAA (and short 20 BBB from the 40th session)."""
    days = list(pd.bdate_range("2025-01-02", periods=80).date)
    path = [100_000 * (1.01 ** i if i < 30 else 1.01 ** 29 * (0.98 ** (i - 29)) if i < 41
                       else 1.01 ** 29 * 0.98 ** 11 * 1.02 ** (i - 40)) for i in range(80)]
    equity = pd.Series(path, index=days, dtype=float)
    positions = pd.DataFrame(
        [(d, "AAA", 100.0, 500.0) for d in days]
        + [(d, "BBB", -20.0, 1_000.0) for d in days[40:]],
        columns=["session", "symbol", "qty_shares", "price_usd"],
    )
    fills = pd.DataFrame(
        [(days[1], "AAA", "buy", 100.0, 500.0 * 1.0005, 0.5),
         (days[41], "BBB", "sell", 20.0, 1_000.0 * 0.9995, 0.1)],
        columns=["session", "symbol", "side", "qty_shares", "price_usd", "commission_usd"],
    )
    orders = pd.DataFrame(
        [(days[0], "AAA", "buy", 100.0, "filled", 490.0),
         (days[40], "BBB", "sell", 20.0, "filled", 1_010.0)],
        columns=["session", "symbol", "side", "qty_shares", "status", "ref_price_usd"],
    )
    main = StrategyResult(
        name="strategy", account="acct", gross_equity=equity, equity=equity,
        costs_usd=pd.Series({days[41]: 4.0}).reindex(days, fill_value=0.0),
        weights=pd.DataFrame(columns=["session", "symbol", "weight"]), orders=orders,
        fills=fills, positions=positions,
    )
    flat = _strategy("equal_weight", [100_000.0] * 4)
    flat = StrategyResult(**{**{f: getattr(flat, f) for f in StrategyResult.__dataclass_fields__},
                             "equity": pd.Series(100_000.0, index=days),
                             "gross_equity": pd.Series(100_000.0, index=days),
                             "costs_usd": pd.Series(0.0, index=days)})
    return BacktestResult(**{**_result_fields(), "sessions": days,
                             "strategies": {"strategy": main, "equal_weight": flat},
                             "ic": pd.DataFrame(columns=["session", "ic", "rank_ic"])})


def test_tear_sheet_when_80_sessions_then_rolling_monthly_drawdowns_exposure_and_costs() -> None:
    result = _long_result()
    figures = result.figures()
    page = render_tear_sheet(result)
    # rolling Sharpe and volatility over 21 sessions (fewer than 126 returns)
    section = page[page.index("<h2>Rolling Sharpe"):page.index("<h2>Monthly returns")]
    assert section.count("<svg") == 2 and "trailing 21 sessions" in section
    # monthly heat map: January 2025 compounds the sessions in it
    returns = result.strategy.returns
    january = float((1 + returns[[d.month == 1 for d in returns.index]]).prod() - 1)
    heat = page[page.index('<table class="heat">'):]
    heat = heat[:heat.index("</table>")]
    assert "<th>2025</th>" in heat and "Jan" in heat and f"{100 * january:.2f} %" in heat
    # worst drawdowns: the first is the maximum drawdown, peak at the 30th session
    worst = figures["worst_drawdowns"]
    assert worst[0]["depth"] == pytest.approx(figures["max_drawdown"])
    assert worst[0]["peak"] == result.sessions[29].isoformat()
    assert worst[0]["trough"] == result.sessions[40].isoformat()
    table = page[page.index('<table class="drawdowns">'):]
    assert f"{100 * figures['max_drawdown']:.2f} %" in table[:table.index("</table>")]
    # exposure: 50,000 of AAA, then 20,000 short of BBB, over the equity
    gross = result.strategy.exposure["gross"]
    assert gross.iloc[0] == pytest.approx(0.5)
    assert gross.iloc[50] == pytest.approx(70_000 / result.strategy.gross_equity.iloc[50])
    assert figures["gross_exposure"] == pytest.approx(float(gross.mean()))
    assert figures["net_exposure"] < figures["gross_exposure"]
    assert "Gross exposure" in page
    # slippage: 5 bps on each fill's auction price; shortfall against the orders' closes
    slip = 100 * 500.0 * 0.0005 + 20 * 1_000.0 * 0.0005
    assert figures["slippage_usd"] == pytest.approx(slip)
    assert figures["shortfall_usd"] == pytest.approx(100 * (500.25 - 490.0) + 20 * (1_010.0 - 999.5))
    costs = page[page.index('<table class="costs">'):]
    assert f"{0.6 + 4.0 + slip:,.2f}" in costs[:costs.index("</table>")]  # commission + 4 + slip
    # return distribution with its moments
    assert "Return distribution" in page and "value at risk 95 %" in page
    assert figures["var_95"] == pytest.approx(float(np.percentile(returns, 5)))
