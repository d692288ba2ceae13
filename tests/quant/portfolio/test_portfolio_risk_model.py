"""Risk models: point in time, shrinkage, exponential weighting, positive semi-definite repair."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from portfolio_markets import market

from quant.config import PortfolioSettings
from quant.exceptions import PortfolioError
from quant.portfolio import (
    ExponentialCovariance,
    LedoitWolfCovariance,
    RiskModel,
    SampleCovariance,
    make_psd,
    risk_model_from_settings,
    trailing_returns,
)


def test_trailing_returns_when_rows_after_as_of_then_never_returned() -> None:
    _, returns, _ = market(5, sessions=100, seed=1)
    as_of = returns.index[59]
    window = trailing_returns(returns, as_of.date(), 40)
    assert window.index.max() == as_of
    assert len(window) == 40


def test_covariance_when_future_returns_change_then_estimate_as_of_unchanged() -> None:
    _, returns, _ = market(6, sessions=120, seed=2)
    as_of = returns.index[79]
    changed = returns.copy()
    changed.iloc[80:] = changed.iloc[80:] * 10
    model = LedoitWolfCovariance()
    before = model.covariance(trailing_returns(returns, as_of, 60))
    after = model.covariance(trailing_returns(changed, as_of, 60))
    pd.testing.assert_frame_equal(before, after)


def test_ledoit_wolf_when_few_sessions_then_shrunk_towards_identity_and_well_conditioned() -> None:
    _, returns, _ = market(40, sessions=30, seed=3)
    sample = SampleCovariance().covariance(returns).to_numpy()
    shrunk = LedoitWolfCovariance().covariance(returns).to_numpy()
    assert np.linalg.cond(shrunk) < np.linalg.cond(sample)
    assert np.trace(shrunk) == pytest.approx(np.trace(sample), rel=1e-6)


def test_sample_covariance_when_compared_with_pandas_then_equal_annualised() -> None:
    _, returns, _ = market(8, sessions=90, seed=4)
    np.testing.assert_allclose(
        SampleCovariance().covariance(returns).to_numpy(),
        returns.cov().to_numpy() * 252,
        rtol=1e-9,
    )


def test_exponential_when_recent_volatility_high_then_estimate_above_sample() -> None:
    rng = np.random.default_rng(5)
    calm = rng.normal(0, 0.005, (200, 3))
    stormy = rng.normal(0, 0.03, (20, 3))
    returns = pd.DataFrame(np.vstack([calm, stormy]), columns=["A", "B", "C"])
    sample = np.diag(SampleCovariance().covariance(returns))
    recent = np.diag(ExponentialCovariance(halflife_sessions=10).covariance(returns))
    assert (recent > 2 * sample).all()


def test_risk_models_when_names_have_gaps_then_finite_and_psd() -> None:
    _, returns, _ = market(10, sessions=80, seed=6)
    returns.iloc[:40, 2] = np.nan
    returns.iloc[::7, 5] = np.nan
    for model in (SampleCovariance(), LedoitWolfCovariance(), ExponentialCovariance()):
        assert isinstance(model, RiskModel)
        cov = model.covariance(returns).to_numpy()
        assert np.isfinite(cov).all()
        assert np.linalg.eigvalsh(cov).min() >= -1e-12


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 12), seed=st.integers(0, 10_000))
def test_make_psd_when_matrix_indefinite_then_result_psd_and_symmetric(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n))
    indefinite = (a + a.T) / 2
    fixed = make_psd(indefinite)
    np.testing.assert_allclose(fixed, fixed.T)
    values = np.linalg.eigvalsh(fixed)
    assert values.min() >= -1e-10 * max(abs(values).max(), 1.0)


def test_make_psd_when_already_psd_then_unchanged() -> None:
    _, returns, _ = market(5, sessions=60, seed=7)
    cov = returns.cov().to_numpy()
    np.testing.assert_array_equal(make_psd(cov), (cov + cov.T) / 2)


def test_covariance_when_one_session_then_raises() -> None:
    _, returns, _ = market(3, sessions=1, seed=8)
    with pytest.raises(PortfolioError, match="at least 2"):
        LedoitWolfCovariance().covariance(returns)


def test_risk_model_from_settings_when_named_then_matching_model() -> None:
    assert isinstance(risk_model_from_settings(PortfolioSettings()), LedoitWolfCovariance)
    model = risk_model_from_settings(
        PortfolioSettings(risk_model="exponential", ewm_halflife_sessions=21)
    )
    assert isinstance(model, ExponentialCovariance) and model.halflife_sessions == 21
