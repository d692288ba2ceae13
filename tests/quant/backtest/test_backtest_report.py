"""Backtest result, figures and tear sheet on a small hand-made result; argument checks."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, timedelta

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
    assert page.count("<svg") == 4  # equity, drawdown, IC, turnover
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
