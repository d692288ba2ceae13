"""Portfolio construction: scores and a risk model in, target weights within every limit out.

Methods (PyPortfolioOpt and riskfolio-lib): ``mean_variance``, ``min_volatility``,
``hrp``, ``risk_parity``, ``cvar`` and the ``top_k`` baseline. Limits come from
:class:`quant.config.PortfolioSettings`; a repair step enforces them whatever a
solver returns, and a configured fallback chain takes over when a method fails.
Expected transaction costs and a no-trade band keep weak signals from churning the
book; the expected returns are scaled by the model's realised IC (:class:`Conviction`).
"""

from quant.portfolio._conviction import Conviction
from quant.portfolio._limits import Limits, Problem, check_limits, enforce_limits, turnover
from quant.portfolio._methods import METHODS, expected_returns_from_scores
from quant.portfolio._optimizer import Attempt, PortfolioOptimizer, PortfolioResult
from quant.portfolio._risk import (
    TRADING_DAYS,
    ExponentialCovariance,
    LedoitWolfCovariance,
    RiskModel,
    SampleCovariance,
    make_psd,
    risk_model_from_settings,
    trailing_returns,
)
from quant.portfolio._stage import (
    SolvedPortfolio,
    load_current_weights,
    load_returns,
    load_scores,
    load_universe,
    optimize_portfolio,
    solve_portfolio,
    weights_from_positions,
)

__all__ = [
    "SolvedPortfolio",
    "METHODS",
    "TRADING_DAYS",
    "Attempt",
    "Conviction",
    "ExponentialCovariance",
    "LedoitWolfCovariance",
    "Limits",
    "PortfolioOptimizer",
    "PortfolioResult",
    "Problem",
    "RiskModel",
    "SampleCovariance",
    "check_limits",
    "enforce_limits",
    "expected_returns_from_scores",
    "load_current_weights",
    "load_returns",
    "load_scores",
    "load_universe",
    "make_psd",
    "optimize_portfolio",
    "solve_portfolio",
    "risk_model_from_settings",
    "trailing_returns",
    "turnover",
    "weights_from_positions",
]
