"""Costs and conviction in portfolio construction: the cost term, the no-trade band, the IC scaling,
and the top_k warning."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from portfolio_markets import market

from quant.config import PortfolioSettings
from quant.portfolio import PortfolioOptimizer
from quant.portfolio._conviction import Conviction, conviction_from_daily_ic, realised_rank_ic
from quant.portfolio._costs import apply_no_trade_band

METHODS = ["mean_variance", "min_volatility", "hrp", "risk_parity", "cvar", "top_k"]


def _settings(**overrides) -> PortfolioSettings:
    base = {"lookback_sessions": 120, "min_history_sessions": 60, "max_sector_weight": None}
    return PortfolioSettings(**(base | overrides))


def _churn(config: PortfolioSettings, method: str, days: int = 12) -> float:
    """Turnover summed over ``days`` rebalances on fresh random scores (a model with no skill),
    each from the previous day's book; the first day's purchase from cash left out."""
    _, returns, _ = market(30, sessions=120 + days, seed=21)
    rng = np.random.default_rng(5)
    optimizer = PortfolioOptimizer(config)
    book = pd.Series(dtype=float)
    total = 0.0
    for day in range(days):
        scores = pd.Series(rng.normal(size=30), index=returns.columns)
        result = optimizer.optimize(
            scores,
            returns.iloc[: 120 + day],
            current_weights=book,
            method=method,
            conviction=Conviction(ic=config.score_ic, source="configured"),
        )
        assert result.stage == "primary", result.attempts
        total += result.turnover if day else 0.0
        book = result.weights[result.weights != 0]
    return total


@pytest.mark.parametrize("method", METHODS)
def test_optimize_when_scores_have_no_skill_then_costs_and_band_cut_the_churn(method: str) -> None:
    # cvar with a low risk aversion: a book its scores move (at 1 its CVaR term dominates)
    common = {"risk_aversion": 0.1} if method == "cvar" else {}
    blind = _churn(_settings(turnover_penalty=0.0, no_trade_band=0.0, **common), method)
    aware = _churn(_settings(turnover_penalty=0.002, no_trade_band=0.0025, **common), method)

    if method in ("hrp", "risk_parity", "min_volatility"):
        # scores do not enter these methods: only the covariance's drift moves them
        assert aware <= blind
    else:
        assert blind > 0.5  # the test needs a method that churns on noise
        assert aware <= blind / 3.0


def _problem_and_target(band: float):
    scores, returns, _ = market(30, sessions=120, seed=8)
    config = _settings(turnover_penalty=0.0, no_trade_band=band, min_position=0.0)
    optimizer = PortfolioOptimizer(config)
    target = optimizer.optimize(scores, returns, method="min_volatility").weights
    return optimizer, scores, returns, target


def test_no_trade_band_when_change_inside_band_then_not_traded_and_outside_then_traded() -> None:
    optimizer, scores, returns, target = _problem_and_target(band=0.01)
    held = target[target > 0.02].index
    assert len(held) >= 4  # the test needs four names to move
    small_up, small_down, big_up, big_down = held[:4]
    current = target.copy()
    current[small_up] += 0.004  # inside the band of 0.01
    current[small_down] -= 0.004
    current[big_up] += 0.015  # outside it
    current[big_down] -= 0.015

    result = optimizer.optimize(scores, returns, current_weights=current, method="min_volatility")

    w = result.weights
    assert w[small_up] == current[small_up]
    assert w[small_down] == current[small_down]
    assert w[big_up] == pytest.approx(target[big_up], abs=1e-6)
    assert w[big_down] == pytest.approx(target[big_down], abs=1e-6)
    assert result.band_held_back >= 2
    moved = (w - current).abs()
    assert moved[[small_up, small_down]].sum() == 0.0
    assert moved.sum() == pytest.approx(result.turnover, abs=1e-12)


def test_apply_no_trade_band_when_band_off_then_weights_unchanged() -> None:
    optimizer, scores, returns, target = _problem_and_target(band=0.0)
    current = target * 0.999
    problem, _ = optimizer.build_problem(scores, returns, current_weights=current)
    w = target.reindex(list(problem.symbols)).to_numpy()

    banded, held_back, skipped = apply_no_trade_band(w, problem, optimizer.limits, 0.0)

    assert np.array_equal(banded, w) and held_back == 0 and skipped is None
    banded, held_back, _ = apply_no_trade_band(w, problem, optimizer.limits, 0.01)
    assert held_back == int((np.abs(w - problem.current) > 0).sum())
    assert np.array_equal(banded, problem.current)


def test_conviction_when_realised_ranks_unrelated_to_scores_then_zero() -> None:
    # five names; the next session's returns rank them 2, 5, 3, 1, 4 against scores ranked
    # 1..5: Spearman's rho is 1 - 6 x 20 / 120 = 0 on every session
    sessions = pd.bdate_range("2024-01-02", periods=30)
    names = ["A", "B", "C", "D", "E"]
    order = np.array([2, 5, 3, 1, 4], dtype=float)
    returns = pd.DataFrame([order / 100.0] * len(sessions), index=sessions, columns=names)
    predictions = pd.DataFrame(
        [(d, s, float(i)) for d in sessions for i, s in enumerate(names, start=1)],
        columns=["session_date", "symbol", "score"],
    )
    config = _settings(ic_window_sessions=25, ic_min_sessions=20)

    daily = realised_rank_ic(predictions, returns, horizon_sessions=1, window=25)
    conviction = conviction_from_daily_ic(daily, config, horizon_sessions=1)

    assert len(daily) == 25
    assert np.allclose(daily.to_numpy(), 0.0)
    assert conviction.source == "realised"
    assert conviction.ic == 0.0
    # the same scores against returns in their own order: full conviction, shrunk by nothing
    aligned = pd.DataFrame([np.arange(1, 6) / 100.0] * len(sessions), index=sessions, columns=names)
    perfect = conviction_from_daily_ic(realised_rank_ic(predictions, aligned, 1, 25), config, 1)
    assert perfect.ic == pytest.approx(1.0)


def test_realised_rank_ic_when_names_missing_and_ties_then_scipy_spearman_per_session() -> None:
    from scipy.stats import spearmanr

    rng = np.random.default_rng(7)
    sessions = pd.bdate_range("2024-01-02", periods=40)
    names = [f"N{i:02d}" for i in range(30)]
    returns = pd.DataFrame(rng.normal(0.0, 0.02, (40, 30)), index=sessions, columns=names)
    returns.iloc[10:14, 4] = np.nan  # an outcome unknown for a name over a few sessions
    rows = [(d.date(), s, float(np.round(rng.normal(), 1)))  # rounded: tied scores
            for d in sessions for s in names if rng.random() < 0.8]
    predictions = pd.DataFrame(rows, columns=["session_date", "symbol", "score"])
    few = predictions["session_date"] == sessions[3].date()
    predictions = predictions[~few | predictions["symbol"].isin(names[:4])]  # 4 names: no IC

    daily = realised_rank_ic(predictions, returns, horizon_sessions=2, window=30)

    forward = np.expm1(np.log1p(returns).rolling(2).sum().shift(-2))
    expected = {}
    for day in sessions[:-2][-30:]:
        s = predictions[predictions["session_date"] == day.date()].set_index("symbol")["score"]
        r = forward.loc[day].reindex(s.index)
        ok = s.notna() & r.notna()
        if ok.sum() >= 5:
            expected[day] = spearmanr(s[ok], r[ok]).statistic
    assert sessions[3] not in daily.index and len(expected) >= 25
    assert list(daily.index) == list(expected)
    assert np.allclose(daily.to_numpy(), list(expected.values()), atol=1e-12)


def test_conviction_when_too_few_sessions_then_fallback_recorded() -> None:
    config = _settings(ic_min_sessions=20)
    few = pd.Series([0.1] * 5)

    validation = conviction_from_daily_ic(few, config, 5, validation_ic=-0.02)
    configured = conviction_from_daily_ic(few, config, 5, validation_ic=None)

    assert validation.source == "validation" and validation.ic == 0.0
    assert "ic_min_sessions" in validation.note
    assert configured.source == "configured" and configured.ic == config.score_ic
    assert "score_ic" in configured.note


@pytest.mark.parametrize("method", ["mean_variance", "cvar"])
def test_optimize_when_no_conviction_then_scores_do_not_move_the_targets(method: str) -> None:
    scores, returns, _ = market(30, sessions=120, seed=9)
    reversed_scores = -scores
    optimizer = PortfolioOptimizer(_settings(risk_aversion=0.1))
    none = Conviction(ic=0.0, source="realised", realised_ic=0.0, sessions=30)
    strong = Conviction(ic=0.3, source="realised", realised_ic=0.3, sessions=30)

    first = optimizer.optimize(scores, returns, method=method, conviction=none)
    second = optimizer.optimize(reversed_scores, returns, method=method, conviction=none)
    believed = optimizer.optimize(scores, returns, method=method, conviction=strong)

    assert first.expected_return == 0.0
    pd.testing.assert_series_equal(first.weights, second.weights, atol=1e-6, rtol=0)
    assert (first.weights - believed.weights).abs().sum() > 1e-3  # scores matter with conviction
    assert first.diagnostics()["conviction"]["ic"] == 0.0


def test_top_k_when_no_conviction_then_held_book_kept() -> None:
    scores, returns, _ = market(30, sessions=120, seed=10)
    optimizer = PortfolioOptimizer(_settings(top_k=10, top_k_max_drops=10))
    none = Conviction(ic=0.0, source="realised")
    book = optimizer.optimize(scores, returns, method="top_k", conviction=none).weights

    after = optimizer.optimize(
        -scores, returns, current_weights=book[book > 0], method="top_k", conviction=none
    )
    free = PortfolioOptimizer(_settings(top_k=10, top_k_max_drops=10, turnover_penalty=0.0))
    swapped = free.optimize(-scores, returns, current_weights=book[book > 0], method="top_k")

    assert set(after.weights[after.weights > 0].index) == set(book[book > 0].index)
    assert after.turnover == pytest.approx(0.0, abs=1e-9)
    # without the cost the reversed scores replace the book
    assert set(swapped.weights[swapped.weights > 0].index) != set(book[book > 0].index)


@pytest.mark.parametrize(("top_k", "warns"), [(30, True), (45, True), (29, False)])
def test_top_k_when_not_below_universe_then_warning_recorded_and_logged(
    top_k: int, warns: bool, caplog: pytest.LogCaptureFixture
) -> None:
    scores, returns, _ = market(30, sessions=120, seed=11)
    optimizer = PortfolioOptimizer(_settings(top_k=top_k))

    with caplog.at_level(logging.WARNING, logger="quant.portfolio"):
        result = optimizer.optimize(scores, returns, method="top_k")

    found = [w for w in result.warnings if "top_k" in w]
    assert bool(found) is warns
    assert result.diagnostics()["warnings"] == list(result.warnings)
    assert any("top_k" in r.getMessage() for r in caplog.records) is warns


def test_optimize_records_expected_cost_of_the_turnover() -> None:
    scores, returns, _ = market(30, sessions=120, seed=12)
    config = _settings(turnover_penalty=0.003)
    result = PortfolioOptimizer(config).optimize(scores, returns)

    assert result.turnover > 0.5
    assert result.expected_cost == pytest.approx(0.003 * result.turnover, rel=1e-12)
    assert result.diagnostics()["expected_cost"] == result.expected_cost
