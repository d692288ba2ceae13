"""Transaction costs in portfolio construction: the cost term, the no-trade band, the post-step.

A trade costs ``turnover_penalty`` per unit of traded value (``sum(|w - w_current|)``,
fractions of equity). The expected return it buys is earned over the
``cost_horizon_sessions`` the signal lasts, so against annualised expected
returns the cost counts ``turnover_penalty x 252 / cost_horizon_sessions`` per
unit traded (:func:`annual_cost_rate`).

Where the cost term goes, per method:

``mean_variance``, ``min_volatility`` (PyPortfolioOpt)
    in the solver's objective (``objective_functions.transaction_cost``);
``cvar`` (riskfolio-lib)
    riskfolio-lib's ``Portfolio.optimization`` has no transaction-cost term in its
    objective (only a turnover constraint), so :func:`cost_aware_move` applies it
    afterwards: the best point, by the method's own mean-CVaR utility less the cost,
    on the line from the current book to the method's target;
``top_k``
    in the selection: a held name is replaced only when the newcomer's expected
    return beats it by the round-trip cost (:func:`swap_hurdle`);
``hrp``, ``risk_parity``
    these take no expected return: their targets move only with the covariance
    estimate, so there is no expected gain to set a cost against; the no-trade band
    alone keeps them from trading that estimate's noise.

Every method's weights then go through the no-trade band (:func:`apply_no_trade_band`).
"""

from __future__ import annotations

import numpy as np

from quant.config import PortfolioSettings
from quant.portfolio._limits import Limits, Problem, check_limits, turnover
from quant.portfolio._risk import TRADING_DAYS

__all__ = [
    "annual_cost_rate",
    "apply_no_trade_band",
    "cost_aware_move",
    "expected_cost",
    "historical_cvar",
    "swap_hurdle",
]

_ZERO = 1e-12
_STEPS = 40


def annual_cost_rate(settings: PortfolioSettings) -> float:
    """Cost per unit of traded value in annualised return units (``k x 252 / horizon``)."""
    return settings.turnover_penalty * TRADING_DAYS / settings.cost_horizon_sessions


def swap_hurdle(settings: PortfolioSettings) -> float:
    """Annualised expected-return advantage a newcomer needs over the name it replaces.

    Selling one name and buying another trades the weight twice: the round trip
    costs ``2 x`` :func:`annual_cost_rate`.
    """
    return 2.0 * annual_cost_rate(settings)


def expected_cost(w: np.ndarray, problem: Problem, settings: PortfolioSettings) -> float:
    """Expected cost of moving the current book to ``w``, fraction of equity."""
    return settings.turnover_penalty * turnover(w, problem)


def historical_cvar(w: np.ndarray, returns: np.ndarray, alpha: float) -> float:
    """Daily historical CVaR of ``w``: the mean loss of the worst ``alpha`` share of sessions.

    Parameters
    ----------
    w : ndarray of shape (n,)
    returns : ndarray of shape (n_sessions, n), daily returns
    alpha : float, tail probability

    Returns
    -------
    float, daily loss as a fraction of equity (Rockafellar-Uryasev form)
    """
    losses = -(returns @ w)
    var = float(np.quantile(losses, 1.0 - alpha))
    return var + float(np.clip(losses - var, 0.0, None).mean()) / alpha


def cost_aware_move(
    target: np.ndarray,
    problem: Problem,
    limits: Limits,
    settings: PortfolioSettings,
    anchor: np.ndarray,
) -> np.ndarray:
    """The point between the current book and ``target`` worth trading to, for ``cvar``.

    The candidates lie on the line from the current book, within the limits (``anchor``)
    and scaled to the target's gross exposure where the limits allow (the budget is a
    limit, not a choice the cost may trade against), to the target; among those within
    every limit, the one with the highest ``mu'w - risk_aversion x CVaR(w) - cost(w)`` in
    daily units (riskfolio-lib's utility) is kept. A book with nothing held moves in full.

    Parameters
    ----------
    target : ndarray of shape (n,), the method's weights within every limit
    anchor : ndarray of shape (n,), the current book trimmed to the limits

    Returns
    -------
    ndarray of shape (n,)
    """
    held = float(np.abs(anchor).sum())
    if settings.turnover_penalty <= 0 or held <= _ZERO:
        return target
    base = anchor * (float(np.abs(target).sum()) / held)
    if check_limits(base, problem, limits):
        base = anchor
    mu_daily = problem.expected_returns / TRADING_DAYS
    cost_daily = settings.turnover_penalty / settings.cost_horizon_sessions
    best, best_value = target, -np.inf
    for step in range(_STEPS + 1):
        w = base + (step / _STEPS) * (target - base)
        if step < _STEPS and check_limits(w, problem, limits):
            continue
        value = (
            float(mu_daily @ w)
            - settings.risk_aversion * historical_cvar(w, problem.returns, settings.cvar_alpha)
            - cost_daily * turnover(w, problem)
        )
        if value > best_value + _ZERO:
            best, best_value = w, value
    return best


def apply_no_trade_band(
    w: np.ndarray, problem: Problem, limits: Limits, band: float
) -> tuple[np.ndarray, int, str | None]:
    """Leave untraded every name whose weight would change by less than ``band``.

    Those names keep their current weight. If that breaks a limit (the untraded
    names' weight adds to what the traded ones were given), the traded names are
    scaled so that the book's net exposure is the target's again; if a limit is still
    broken, the band is not applied that day and the reason says so.

    Parameters
    ----------
    w : ndarray of shape (n,), target weights within every limit
    band : float, fraction of equity

    Returns
    -------
    weights : ndarray of shape (n,)
    held_back : int
        Names whose trade the band skipped.
    skipped : str or None
        Why the band was not applied, when it was not.
    """
    if band <= 0:
        return w, 0, None
    current = problem.current
    small = (np.abs(w - current) < band) & (np.abs(w - current) > _ZERO)
    if not small.any():
        return w, 0, None
    banded = np.where(small, current, w)
    if check_limits(banded, problem, limits):
        traded = ~small & (np.abs(banded) > _ZERO)
        room = float(w.sum() - banded[small].sum())
        moving = float(banded[traded].sum())
        if abs(moving) > _ZERO:
            banded = np.where(traded, banded * room / moving, banded)
        violations = check_limits(banded, problem, limits)
        if violations:
            # e.g. the untraded names push the volatility over its target: shrink the traded
            # names (only they trade) by the least that brings the book within the limits
            scaled = _shrink_traded(banded, traded, problem, limits)
            if scaled is None and limits.vol_target is not None:
                # else the whole book, in proportion, to its volatility target
                vol = problem.volatility(banded)
                scaled = banded * min(1.0, limits.vol_target / vol) if vol > _ZERO else banded
                scaled = None if check_limits(scaled, problem, limits) else scaled
            if scaled is None:
                return w, 0, f"no-trade band not applied: {'; '.join(violations)}"
            banded = scaled
    return banded + 0.0, int(small.sum()), None


def _shrink_traded(
    w: np.ndarray, traded: np.ndarray, problem: Problem, limits: Limits
) -> np.ndarray | None:
    """``w`` with its traded names scaled by the largest factor in [1/2, 1] that keeps every
    limit (bisection), or None when even a half does not."""

    def at(factor: float) -> np.ndarray:
        return np.where(traded, w * factor, w)

    lo, hi = 0.5, 1.0
    if check_limits(at(lo), problem, limits):
        return None
    for _ in range(40):
        mid = (lo + hi) / 2.0
        if check_limits(at(mid), problem, limits):
            hi = mid
        else:
            lo = mid
    return at(lo)
