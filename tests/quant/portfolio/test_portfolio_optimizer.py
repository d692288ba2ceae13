"""Behaviour of the optimiser: volatility target, fallback chain, turnover cap, top_k drops."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from portfolio_markets import market, random_book

from quant.config import PortfolioSettings
from quant.exceptions import ConfigurationError, PortfolioError
from quant.portfolio import (
    LedoitWolfCovariance,
    PortfolioOptimizer,
    SampleCovariance,
    expected_returns_from_scores,
)
from quant.portfolio._methods import hrp_weights


def _vol(weights: pd.Series, returns: pd.DataFrame, lookback: int) -> float:
    cov = LedoitWolfCovariance().covariance(returns.iloc[-lookback:])
    w = weights.reindex(cov.index).fillna(0.0).to_numpy()
    return float(np.sqrt(w @ cov.to_numpy() @ w))


def _settings(**overrides) -> PortfolioSettings:
    # the limits and the chain on their own: no cost term, no no-trade band (tests of those
    # are in test_portfolio_costs.py)
    base = {
        "lookback_sessions": 120,
        "min_history_sessions": 60,
        "turnover_penalty": 0.0,
        "no_trade_band": 0.0,
    }
    return PortfolioSettings(**(base | overrides))


@pytest.mark.parametrize("method", ["mean_variance", "min_volatility", "hrp", "top_k"])
def test_optimize_when_book_riskier_than_target_then_scaled_down_to_target(method: str) -> None:
    scores, returns, sectors = market(40, sessions=150, seed=3, vol_range=(0.02, 0.04))
    config = _settings(vol_target=0.08, min_position=0.0, max_sector_weight=None)
    unscaled = PortfolioOptimizer(config.model_copy(update={"vol_target": None})).optimize(
        scores, returns, method=method
    )
    assert unscaled.ex_ante_vol > 0.08  # the test needs a book riskier than the target

    result = PortfolioOptimizer(config).optimize(scores, returns, method=method)

    assert result.stage == "primary"
    assert _vol(result.weights, returns, 120) == pytest.approx(0.08, rel=1e-6)
    assert result.vol_scale < 1.0


def test_optimize_when_book_calmer_than_target_then_scaled_up_until_leverage_cap() -> None:
    scores, returns, _ = market(40, sessions=150, seed=4, vol_range=(0.002, 0.004))
    config = _settings(
        vol_target=0.5,
        min_position=0.0,
        max_sector_weight=None,
        max_weight=0.2,
        max_leverage=2.0,
        cash_buffer=0.0,
    )
    result = PortfolioOptimizer(config).optimize(scores, returns, method="hrp")

    assert _vol(result.weights, returns, 120) < 0.5
    assert result.weights.abs().sum() == pytest.approx(2.0, rel=1e-9)


def test_optimize_when_small_long_short_book_then_scaled_up_to_target() -> None:
    scores, returns, _ = market(30, sessions=150, seed=5)
    config = _settings(
        long_only=False,
        vol_target=0.05,
        min_position=0.0,
        max_sector_weight=None,
        max_weight=0.3,
        max_leverage=3.0,
        risk_aversion=50.0,
    )
    base = PortfolioOptimizer(config.model_copy(update={"vol_target": None})).optimize(
        scores, returns, method="mean_variance"
    )
    assert base.ex_ante_vol < 0.05  # the test needs a book calmer than the target

    result = PortfolioOptimizer(config).optimize(scores, returns, method="mean_variance")

    assert result.vol_scale > 1.0
    assert _vol(result.weights, returns, 120) == pytest.approx(0.05, rel=1e-6)
    assert result.weights.abs().sum() < 3.0


def test_optimize_when_name_cap_makes_budget_infeasible_then_falls_back_and_continues() -> None:
    # 5 names x 10% cannot hold 98% of equity: the solver's budget constraint is infeasible
    scores, returns, sectors = market(5, sessions=150, seed=6)
    config = _settings(max_weight=0.10, vol_target=None, max_sector_weight=None)

    result = PortfolioOptimizer(config).optimize(
        scores, returns, sectors=sectors, method="mean_variance"
    )

    assert result.fallback_used
    assert result.stage == "hrp"
    assert result.method_used == "hrp"
    first = result.attempts[0]
    assert first.stage == "primary" and not first.ok and "infeasible" in first.reason
    assert result.weights.max() <= 0.10 + 1e-9
    assert result.weights.min() >= 0.0
    assert result.weights.sum() == pytest.approx(0.5)


def test_optimize_when_every_method_fails_then_holds_current_weights() -> None:
    scores, returns, _ = market(5, sessions=150, seed=7)
    current = pd.Series([0.08, 0.05, 0.0, 0.02, 0.0], index=scores.index)
    config = _settings(max_weight=0.10, vol_target=None, fallback_chain=("hold",))

    result = PortfolioOptimizer(config).optimize(
        scores, returns, current_weights=current, method="min_volatility"
    )

    assert result.stage == "hold"
    pd.testing.assert_series_equal(result.weights, current, check_names=False)
    assert result.turnover == pytest.approx(0.0)


def test_optimize_when_chain_empty_and_method_fails_then_all_cash() -> None:
    scores, returns, _ = market(5, sessions=150, seed=8)
    config = _settings(max_weight=0.10, fallback_chain=())

    result = PortfolioOptimizer(config).optimize(scores, returns, method="mean_variance")

    assert result.stage == "cash"
    assert (result.weights == 0).all()
    assert [a.stage for a in result.attempts] == ["primary", "cash"]


@pytest.mark.parametrize("method", ["mean_variance", "hrp", "risk_parity", "cvar", "top_k"])
def test_optimize_when_turnover_capped_then_change_from_current_within_cap(method: str) -> None:
    scores, returns, sectors = market(30, sessions=150, seed=9)
    current = random_book(list(scores.index), 9, 0.6, long_only=True).clip(upper=0.09)
    free = PortfolioOptimizer(_settings()).optimize(
        scores, returns, current_weights=current, sectors=sectors, method=method
    )
    assert free.turnover > 0.15  # without the cap the book moves further than the cap allows

    capped = PortfolioOptimizer(_settings(turnover_cap=0.15)).optimize(
        scores, returns, current_weights=current, sectors=sectors, method=method
    )

    moved = (capped.weights - current.reindex(capped.weights.index).fillna(0.0)).abs().sum()
    assert moved <= 0.15 + 1e-6
    assert capped.turnover == pytest.approx(moved)
    assert capped.stage in ("primary", "relax_turnover")


def test_optimize_when_turnover_cap_blocks_solver_on_first_day_then_relaxed_step_moves_partway() -> (
    None
):
    scores, returns, sectors = market(30, sessions=150, seed=10)
    config = _settings(turnover_cap=0.3, vol_target=None)

    result = PortfolioOptimizer(config).optimize(
        scores, returns, sectors=sectors, method="mean_variance"
    )

    assert result.stage == "relax_turnover"
    assert result.weights.abs().sum() == pytest.approx(0.3, abs=1e-6)


def test_optimize_when_turnover_penalised_then_book_moves_less() -> None:
    scores, returns, sectors = market(30, sessions=150, seed=11)
    current = random_book(list(scores.index), 11, 0.9, long_only=True).clip(upper=0.09)
    config = _settings(vol_target=None, min_position=0.0)
    free = PortfolioOptimizer(config).optimize(
        scores, returns, current_weights=current, sectors=sectors, method="mean_variance"
    )
    penalised = PortfolioOptimizer(config.model_copy(update={"turnover_penalty": 0.05})).optimize(
        scores, returns, current_weights=current, sectors=sectors, method="mean_variance"
    )
    assert penalised.turnover < free.turnover


def test_optimize_when_min_position_set_then_no_smaller_weight_and_sum_kept() -> None:
    scores, returns, sectors = market(60, sessions=150, seed=12)
    config = _settings(min_position=0.02, vol_target=None)

    result = PortfolioOptimizer(config).optimize(scores, returns, sectors=sectors, method="hrp")

    held = result.weights[result.weights > 0]
    assert held.min() >= 0.02
    assert len(held) < 60  # some names were dropped
    assert result.weights.sum() == pytest.approx(0.98)


def test_top_k_when_scores_reverse_then_at_most_max_drops_names_replaced() -> None:
    scores, returns, _ = market(30, sessions=150, seed=13)
    config = _settings(top_k=8, top_k_max_drops=2, vol_target=None, max_sector_weight=None)
    first = PortfolioOptimizer(config).optimize(scores, returns, method="top_k")
    held = set(first.weights[first.weights > 0].index)
    assert len(held) == 8

    second = PortfolioOptimizer(config).optimize(
        -scores, returns, current_weights=first.weights, method="top_k"
    )
    now = set(second.weights[second.weights > 0].index)
    assert len(now) == 8
    assert len(held - now) == 2
    best_new = set((-scores).sort_values(ascending=False).index[:2])
    assert now - held == best_new


def test_mean_variance_when_names_identical_but_scores_differ_then_weight_follows_score() -> None:
    rng = np.random.default_rng(14)
    symbols = [f"N{i}" for i in range(12)]
    returns = pd.DataFrame(
        rng.normal(0, 0.01, (300, 12)),
        index=pd.bdate_range("2023-01-02", periods=300),
        columns=symbols,
    )
    scores = pd.Series(np.linspace(-1, 1, 12), index=symbols)
    config = PortfolioSettings(
        vol_target=None,
        min_position=0.0,
        max_sector_weight=None,
        max_weight=0.5,
        risk_model="sample",
    )
    result = PortfolioOptimizer(config, risk_model=SampleCovariance()).optimize(
        scores, returns, method="mean_variance"
    )
    top, bottom = result.weights[symbols[-3:]].mean(), result.weights[symbols[:3]].mean()
    assert top > bottom
    assert result.expected_return > 0


def test_optimize_when_long_short_then_shorts_allowed_and_net_in_band() -> None:
    scores, returns, sectors = market(30, sessions=150, seed=15)
    config = _settings(
        long_only=False,
        min_net_exposure=-0.05,
        max_net_exposure=0.05,
        max_leverage=1.5,
        vol_target=None,
    )
    result = PortfolioOptimizer(config).optimize(
        scores, returns, sectors=sectors, method="mean_variance"
    )
    assert result.stage == "primary"
    assert (result.weights < 0).any()
    assert -0.05 - 1e-6 <= result.weights.sum() <= 0.05 + 1e-6


def test_optimize_when_name_lacks_history_then_excluded_and_reported() -> None:
    scores, returns, _ = market(10, sessions=150, seed=16)
    returns.iloc[:-30, 0] = np.nan
    result = PortfolioOptimizer(_settings()).optimize(scores, returns, method="hrp")
    assert result.excluded == (scores.index[0],)
    assert scores.index[0] not in result.weights.index


def test_optimize_when_no_name_has_history_then_raises() -> None:
    scores, returns, _ = market(5, sessions=30, seed=17)
    with pytest.raises(PortfolioError, match="60 returns"):
        PortfolioOptimizer(_settings()).optimize(scores, returns)


def test_optimize_when_method_unknown_then_configuration_error() -> None:
    scores, returns, _ = market(5, sessions=150, seed=18)
    with pytest.raises(ConfigurationError, match="bogus"):
        PortfolioOptimizer(_settings()).optimize(scores, returns, method="bogus")


def test_optimize_when_current_name_left_universe_then_sold_and_counted_in_turnover() -> None:
    scores, returns, _ = market(20, sessions=150, seed=19)
    current = pd.Series({"GONE": 0.05})
    result = PortfolioOptimizer(_settings()).optimize(
        scores, returns, current_weights=current, method="hrp"
    )
    assert result.weights["GONE"] == 0.0
    assert result.turnover == pytest.approx(result.weights.abs().sum() + 0.05)


def test_hrp_weights_when_compared_with_pypfopt_then_equal() -> None:
    from pypfopt import HRPOpt

    _, returns, _ = market(25, sessions=200, seed=20)
    cov = returns.cov() * 252
    reference = pd.Series(HRPOpt(cov_matrix=cov).optimize()).reindex(cov.index)
    np.testing.assert_allclose(hrp_weights(cov.to_numpy()), reference.to_numpy(), atol=1e-12)


def test_expected_returns_when_scores_ranked_then_same_order_for_equal_vols() -> None:
    cov = np.eye(4) * 0.04
    mu = expected_returns_from_scores(np.array([3.0, 1.0, 2.0, 0.0]), cov, 0.05)
    assert list(np.argsort(-mu)) == [0, 2, 1, 3]
    assert mu.sum() == pytest.approx(0.0)


def test_risk_parity_when_caps_not_binding_then_risk_contributions_equal() -> None:
    scores, returns, _ = market(25, sessions=150, seed=22)
    config = _settings(vol_target=None, min_position=0.0, max_sector_weight=None, max_weight=0.5)
    result = PortfolioOptimizer(config).optimize(scores, returns, method="risk_parity")

    assert result.stage == "primary"
    cov = LedoitWolfCovariance().covariance(returns.iloc[-120:])
    w = result.weights.reindex(cov.index).to_numpy()
    contributions = w * (cov.to_numpy() @ w)
    assert contributions.max() / contributions.min() == pytest.approx(1.0, abs=1e-2)
    assert w.sum() == pytest.approx(0.98)


def test_cvar_when_risk_dominates_then_tail_loss_below_equal_weight() -> None:
    scores, returns, _ = market(25, sessions=150, seed=23)
    config = _settings(
        vol_target=None,
        min_position=0.0,
        max_sector_weight=None,
        max_weight=0.2,
        risk_aversion=100.0,
    )
    result = PortfolioOptimizer(config).optimize(scores, returns, method="cvar")
    window = returns.iloc[-120:]

    def tail_loss(w: np.ndarray) -> float:
        losses = np.sort(-(window.to_numpy() @ w))[::-1]
        worst = int(np.ceil(0.05 * len(losses)))
        return float(losses[:worst].mean())

    equal = np.full(25, 0.98 / 25)
    chosen = result.weights.reindex(window.columns).to_numpy()
    assert result.stage == "primary"
    assert chosen.sum() == pytest.approx(0.98)
    assert tail_loss(chosen) < tail_loss(equal)


def test_optimize_when_method_returns_nan_then_next_step_used_and_reason_recorded(
    monkeypatch,
) -> None:
    import quant.portfolio._optimizer as optimizer_module

    scores, returns, sectors = market(30, sessions=150, seed=24)
    broken = dict(optimizer_module.METHODS)
    broken["min_volatility"] = lambda problem, *args, **kwargs: np.full(problem.n, np.nan)
    monkeypatch.setattr(optimizer_module, "METHODS", broken)

    result = PortfolioOptimizer(_settings()).optimize(
        scores, returns, sectors=sectors, method="min_volatility"
    )

    assert result.stage == "hrp"
    assert "non-finite" in result.attempts[0].reason
    assert np.isfinite(result.weights.to_numpy()).all()
    assert result.weights.min() >= 0.0


def test_optimize_when_current_book_breaks_new_cap_then_hold_trims_it() -> None:
    scores, returns, _ = market(5, sessions=150, seed=25)
    current = pd.Series([0.30, 0.05, 0.0, 0.02, 0.0], index=scores.index)
    config = _settings(max_weight=0.10, vol_target=None, fallback_chain=("hold",))

    result = PortfolioOptimizer(config).optimize(
        scores, returns, current_weights=current, method="mean_variance"
    )

    assert result.stage == "hold"
    assert result.weights.iloc[0] == pytest.approx(0.10)
    assert result.weights.iloc[1:].tolist() == pytest.approx([0.05, 0.0, 0.02, 0.0])
