"""Every method's weights respect every configured limit, or the result says a fallback was used.

The limits are checked here with pandas, independently of ``quant.portfolio.check_limits``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from portfolio_markets import market, random_book

from quant.config import PORTFOLIO_METHODS, PortfolioSettings
from quant.portfolio import LedoitWolfCovariance, PortfolioOptimizer

TOL = 1e-6


@st.composite
def configurations(draw: st.DrawFn) -> PortfolioSettings:
    long_only = draw(st.booleans())
    max_weight = draw(st.sampled_from([0.05, 0.1, 0.2, 0.5]))
    min_position = draw(st.sampled_from([0.0, 0.002, 0.01]))
    net_band = draw(st.sampled_from([(-0.1, 0.1), (0.0, 0.5), (-0.3, 0.0)]))
    return PortfolioSettings(
        long_only=long_only,
        max_weight=max_weight,
        min_position=min(min_position, max_weight / 2),
        max_sector_weight=draw(st.sampled_from([None, 0.15, 0.25, 0.6])),
        turnover_cap=draw(st.sampled_from([None, 0.1, 0.5, 1.5])),
        turnover_penalty=draw(st.sampled_from([0.0, 0.01])),
        cash_buffer=draw(st.sampled_from([0.0, 0.02, 0.1])),
        vol_target=draw(st.sampled_from([None, 0.05, 0.1, 0.3])),
        max_leverage=draw(st.sampled_from([1.0, 1.5])),
        min_net_exposure=net_band[0],
        max_net_exposure=net_band[1],
        lookback_sessions=100,
        min_history_sessions=50,
        top_k=draw(st.integers(1, 8)),
        top_k_max_drops=draw(st.integers(0, 3)),
    )


def assert_within_limits(
    weights: pd.Series,
    cov: pd.DataFrame,
    sectors: pd.Series,
    current: pd.Series,
    config: PortfolioSettings,
    *,
    check_turnover: bool,
) -> None:
    w = weights.astype(float)
    assert np.isfinite(w.to_numpy()).all()
    gross_cap = config.max_leverage * (1 - config.cash_buffer)
    assert w.abs().sum() <= gross_cap + TOL
    if config.long_only:
        assert w.min() >= -TOL, "negative weight in a long-only book"
    else:
        low = max(config.min_net_exposure, -gross_cap)
        high = min(config.max_net_exposure, gross_cap)
        assert low - TOL <= w.sum() <= high + TOL
    assert w.abs().max() <= config.max_weight + TOL
    if config.max_sector_weight is not None:
        by_sector = w.abs().groupby(sectors.reindex(w.index)).sum()
        assert by_sector.max() <= config.max_sector_weight + TOL
    held = w[w.abs() > 1e-12].abs()
    if config.min_position > 0 and len(held):
        assert held.min() >= config.min_position - TOL
    if config.vol_target is not None:
        v = w.reindex(cov.index).fillna(0.0).to_numpy()
        vol = float(np.sqrt(v @ cov.to_numpy() @ v))
        assert vol <= config.vol_target * (1 + 1e-4) + TOL
    if check_turnover and config.turnover_cap is not None:
        names = w.index.union(current.index)
        moved = (w.reindex(names).fillna(0.0) - current.reindex(names).fillna(0.0)).abs().sum()
        assert moved <= config.turnover_cap + TOL


@pytest.mark.parametrize("method", PORTFOLIO_METHODS)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    config=configurations(),
    n=st.integers(3, 18),
    seed=st.integers(0, 100_000),
    current_gross=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_optimize_when_random_inputs_then_limits_hold_or_fallback_is_reported(
    method: str, config: PortfolioSettings, n: int, seed: int, current_gross: float
) -> None:
    scores, returns, sectors = market(n, seed=seed, sessions=100)
    current = random_book(list(scores.index), seed, current_gross, config.long_only)
    result = PortfolioOptimizer(config).optimize(
        scores, returns, current_weights=current, sectors=sectors, method=method
    )
    cov = LedoitWolfCovariance().covariance(returns.iloc[-config.lookback_sessions :])

    relaxed_turnover = "turnover_cap" in result.limits_relaxed
    assert_within_limits(
        result.weights, cov, sectors, current, config, check_turnover=not relaxed_turnover
    )
    assert result.method == method
    if result.stage == "primary":
        assert result.fallback_used is False
        assert [a.ok for a in result.attempts] == [True]
        assert result.method_used == method
    else:
        assert result.fallback_used is True
        first = result.attempts[0]
        assert first.stage == "primary" and not first.ok and first.reason
        assert result.attempts[-1].ok and result.attempts[-1].stage == result.stage
    if relaxed_turnover:
        assert result.stage in ("hold", "cash")
