"""The limits on a book, the repair step that enforces them and the check that verifies them.

Every method's raw weights go through :func:`enforce_limits` (a projection that
only ever shrinks or moves weight within the limits) and then
:func:`check_limits`; a non-empty list of violations sends the optimiser down
its fallback chain.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from quant.config import PortfolioSettings
from quant.exceptions import OptimizationError

__all__ = [
    "Limits",
    "Problem",
    "check_limits",
    "enforce_limits",
    "sector_matrix",
    "turnover",
]

_ZERO = 1e-12
_VOL_RTOL = 1e-4
_ROUNDS = 25


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits on a book of weights (fractions of equity), derived from :class:`PortfolioSettings`.

    ``gross_cap`` is ``max_leverage x (1 - cash_buffer)``: the largest sum(|w|).
    """

    long_only: bool
    gross_cap: float
    min_net: float
    max_net: float
    max_weight: float
    max_sector_weight: float | None
    turnover_cap: float | None
    min_position: float
    vol_target: float | None
    tolerance: float

    @classmethod
    def from_settings(cls, settings: PortfolioSettings) -> Limits:
        gross_cap = settings.max_leverage * (1.0 - settings.cash_buffer)
        if settings.long_only:
            min_net, max_net = 0.0, gross_cap
        else:
            min_net = max(settings.min_net_exposure, -gross_cap)
            max_net = min(settings.max_net_exposure, gross_cap)
        return cls(
            long_only=settings.long_only,
            gross_cap=gross_cap,
            min_net=min_net,
            max_net=max_net,
            max_weight=settings.max_weight,
            max_sector_weight=settings.max_sector_weight,
            turnover_cap=settings.turnover_cap,
            min_position=settings.min_position,
            vol_target=settings.vol_target,
            tolerance=settings.tolerance,
        )

    def without_turnover_cap(self) -> Limits:
        return replace(self, turnover_cap=None)


@dataclass(frozen=True, slots=True)
class Problem:
    """One day's inputs over the eligible names, aligned by position.

    Attributes
    ----------
    symbols : tuple of str, length n
    scores : ndarray of shape (n,), model scores (higher = better)
    expected_returns : ndarray of shape (n,), annualised, return units
    cov : ndarray of shape (n, n), annualised covariance, positive semi-definite
    returns : ndarray of shape (n_sessions, n), trailing daily returns, NaN as 0
    current : ndarray of shape (n,), current weights of these names
    current_outside : float, sum(|w|) of current weights in names outside the problem
        (they are sold: their weight is 0 in every target)
    sectors : ndarray of shape (n_sectors, n), 1 where a name is in a sector
    """

    symbols: tuple[str, ...]
    scores: np.ndarray
    expected_returns: np.ndarray
    cov: np.ndarray
    returns: np.ndarray
    current: np.ndarray
    current_outside: float
    sectors: np.ndarray

    @property
    def n(self) -> int:
        return len(self.symbols)

    def volatility(self, w: np.ndarray) -> float:
        """Annualised ex-ante volatility of ``w``."""
        return float(np.sqrt(max(float(w @ self.cov @ w), 0.0)))


def sector_matrix(labels: list[str] | tuple[str, ...] | np.ndarray) -> np.ndarray:
    """Indicator matrix of shape (n_sectors, n): row s is 1 on the names in sector s."""
    labels = np.asarray(labels, dtype=object)
    names = sorted(set(labels.tolist()))
    return np.array([(labels == s).astype(float) for s in names]).reshape(len(names), len(labels))


def turnover(w: np.ndarray, problem: Problem) -> float:
    """sum(|w - w_current|) over every name, including current names outside the problem."""
    return float(np.abs(w - problem.current).sum() + problem.current_outside)


# -- projection helpers ------------------------------------------------------------------------


def _sector_gross(w: np.ndarray, sectors: np.ndarray) -> np.ndarray:
    return sectors @ np.abs(w) if sectors.size else np.zeros(0)


def _cap_sectors(w: np.ndarray, sectors: np.ndarray, cap: float | None) -> np.ndarray:
    if cap is None or not sectors.size:
        return w
    gross = _sector_gross(w, sectors)
    factor = np.where(gross > cap, cap / np.maximum(gross, _ZERO), 1.0)
    # every name is in exactly one sector
    return w * (factor @ sectors)


def _waterfill(w: np.ndarray, target: float, limits: Limits, sectors: np.ndarray) -> np.ndarray:
    """Long-only: clip names and sectors at their caps, then spread the shortfall to ``target``
    over the held names with room, in proportion to their weights; repeat until nothing moves."""
    w = np.clip(w, 0.0, limits.max_weight)
    for _ in range(200):
        w = np.minimum(w, limits.max_weight)
        w = _cap_sectors(w, sectors, limits.max_sector_weight)
        shortfall = target - w.sum()
        if shortfall <= limits.tolerance * 0.01:
            break
        room = limits.max_weight - w
        if limits.max_sector_weight is not None and sectors.size:
            sector_room = limits.max_sector_weight - _sector_gross(w, sectors)
            room = np.minimum(room, np.maximum(sector_room, 0.0) @ sectors)
        open_ = (w > _ZERO) & (room > _ZERO)
        if not open_.any():
            break
        add = np.where(open_, w, 0.0)
        add = shortfall * add / add.sum()
        w = w + np.minimum(add, np.where(open_, room, 0.0))
    return w


def _cap(w: np.ndarray, limits: Limits, sectors: np.ndarray, target: float | None) -> np.ndarray:
    """Enforce sign, name, sector, gross and net limits: shrinking only, or, in long-only mode
    with a ``target`` sum, refilling what the caps cut over the names with room."""
    if limits.long_only:
        w = np.clip(w, 0.0, None)
        if target is None:
            w = _cap_sectors(np.minimum(w, limits.max_weight), sectors, limits.max_sector_weight)
        else:
            w = _waterfill(w, min(target, limits.gross_cap), limits, sectors)
        if w.sum() > limits.gross_cap:
            w = w * (limits.gross_cap / w.sum())
        return w
    w = np.clip(w, -limits.max_weight, limits.max_weight)
    w = _cap_sectors(w, sectors, limits.max_sector_weight)
    gross = np.abs(w).sum()
    if gross > limits.gross_cap:
        w = w * (limits.gross_cap / gross)
    net = w.sum()
    longs, shorts = np.clip(w, 0.0, None), np.clip(w, None, 0.0)
    if net > limits.max_net and longs.sum() > _ZERO:
        w = longs * max(0.0, 1.0 - (net - limits.max_net) / longs.sum()) + shorts
    elif net < limits.min_net and shorts.sum() < -_ZERO:
        w = longs + shorts * max(0.0, 1.0 - (limits.min_net - net) / -shorts.sum())
    return w


def _drop_small(w: np.ndarray, limits: Limits) -> np.ndarray:
    if limits.min_position <= 0:
        return np.where(np.abs(w) > _ZERO, w, 0.0)
    return np.where(np.abs(w) >= limits.min_position, w, 0.0)


def _drop_small_and_refill(
    w: np.ndarray, limits: Limits, sectors: np.ndarray, *, redistribute: bool
) -> np.ndarray:
    """Zero the positions under ``min_position``. Long-only books with ``redistribute`` keep
    their sum: they keep the most names whose weights, scaled up to the old sum, all reach
    the minimum (the smallest names go first) and refill those within the caps."""
    if not (limits.long_only and redistribute):
        return _drop_small(w, limits)
    total = float(w.sum())
    if total <= _ZERO:
        return np.zeros_like(w)
    order = np.argsort(-w, kind="stable")
    ranked = w[order]
    with np.errstate(divide="ignore", invalid="ignore"):
        reach = ranked * total / np.cumsum(ranked)
    fits = np.flatnonzero((ranked > _ZERO) & (reach >= limits.min_position))
    keep = np.zeros_like(w)
    if fits.size:
        m = int(fits.max()) + 1
        keep[order[:m]] = ranked[:m]
    return _cap(keep, limits, sectors, total)


def _max_scale(w: np.ndarray, limits: Limits, sectors: np.ndarray) -> float:
    """Largest factor ``w`` can be multiplied by and stay within gross, name, sector and net limits."""
    factors = [np.inf]
    gross = np.abs(w).sum()
    if gross > _ZERO:
        factors.append(limits.gross_cap / gross)
    largest = np.abs(w).max(initial=0.0)
    if largest > _ZERO:
        factors.append(limits.max_weight / largest)
    if limits.max_sector_weight is not None and sectors.size:
        worst = _sector_gross(w, sectors).max(initial=0.0)
        if worst > _ZERO:
            factors.append(limits.max_sector_weight / worst)
    net = w.sum()
    if not limits.long_only:
        if net > _ZERO:
            factors.append(limits.max_net / net if limits.max_net > 0 else 0.0)
        elif net < -_ZERO:
            factors.append(limits.min_net / net if limits.min_net < 0 else 0.0)
    return float(max(min(factors), 0.0))


def _target_vol(
    w: np.ndarray, problem: Problem, limits: Limits, *, scale_up: bool
) -> tuple[np.ndarray, float]:
    if limits.vol_target is None:
        return w, 1.0
    vol = problem.volatility(w)
    if vol <= _ZERO:
        return w, 1.0
    factor = limits.vol_target / vol
    if factor > 1.0:
        factor = min(factor, _max_scale(w, limits, problem.sectors)) if scale_up else 1.0
        factor = max(factor, 1.0)
    return w * factor, factor


def enforce_limits(
    raw: np.ndarray,
    problem: Problem,
    limits: Limits,
    *,
    anchor: np.ndarray | None = None,
    redistribute: bool = True,
    scale_up: bool = True,
) -> tuple[np.ndarray, float]:
    """Project raw weights onto the limits.

    Steps, in order: sign (long-only), per-name cap, per-sector cap, gross cap and net
    band (long-only books are refilled to their pre-cap sum over the names with room
    when ``redistribute``); minimum position size (dropped weight is redistributed the
    same way); scaling to the volatility target (up only as far as every cap allows,
    and only when ``scale_up``); minimum position size again (without redistribution,
    which would add risk); and last the turnover cap, by moving only part of the way
    from ``anchor`` (the current book within the limits) towards the result.

    Parameters
    ----------
    raw : ndarray of shape (n,), fractions of equity
    problem : Problem
    limits : Limits
    anchor : ndarray of shape (n,), optional
        The current weights already within every other limit; required when
        ``limits.turnover_cap`` is set.

    Returns
    -------
    weights : ndarray of shape (n,)
    vol_scale : float
        Gross exposure after the volatility targeting over gross exposure before it.

    Raises
    ------
    OptimizationError
        ``raw`` holds NaN or infinite values, or has the wrong shape.
    """
    w = np.asarray(raw, dtype=float).reshape(-1)
    if w.shape != (problem.n,):
        raise OptimizationError(f"weights have shape {w.shape}, expected ({problem.n},)")
    if not np.all(np.isfinite(w)):
        raise OptimizationError("the method returned non-finite weights")
    sectors = problem.sectors
    target = None
    if limits.long_only and redistribute:
        target = float(np.clip(w, 0.0, None).sum())
    w = _cap(w, limits, sectors, target)
    if limits.min_position > 0:
        w = _drop_small_and_refill(w, limits, sectors, redistribute=redistribute)
    pre_scale_gross = float(np.abs(w).sum())
    for _ in range(_ROUNDS):
        w, _factor = _target_vol(w, problem, limits, scale_up=scale_up)
        small = (np.abs(w) > _ZERO) & (np.abs(w) < limits.min_position)
        if not small.any():
            break
        # scaling down left positions under the minimum: drop them, refill, scale again
        w = _drop_small_and_refill(w, limits, sectors, redistribute=redistribute)
    w = _drop_small(w, limits)
    if limits.vol_target is not None and problem.volatility(w) > limits.vol_target:
        w, _factor = _target_vol(w, problem, limits, scale_up=False)
    vol_scale = float(np.abs(w).sum()) / pre_scale_gross if pre_scale_gross > _ZERO else 1.0
    if limits.turnover_cap is not None and turnover(w, problem) > limits.turnover_cap:
        if anchor is None:
            raise OptimizationError("a turnover cap needs the current weights as an anchor")
        w = _partial_move(anchor, w, problem, limits)
    return w + 0.0, vol_scale


def _partial_move(
    anchor: np.ndarray, goal: np.ndarray, problem: Problem, limits: Limits
) -> np.ndarray:
    """The point furthest along anchor -> goal whose turnover is within the cap (bisection)."""
    cap = limits.turnover_cap
    assert cap is not None

    def at(alpha: float) -> np.ndarray:
        return _drop_small(anchor + alpha * (goal - anchor), limits)

    lo, hi = 0.0, 1.0
    if turnover(at(lo), problem) > cap:
        return at(lo)
    for _ in range(50):
        mid = (lo + hi) / 2.0
        if turnover(at(mid), problem) <= cap:
            lo = mid
        else:
            hi = mid
    return at(lo)


def check_limits(
    w: np.ndarray, problem: Problem, limits: Limits, *, tolerance: float | None = None
) -> list[str]:
    """Every limit ``w`` breaks, as readable messages (empty when within every limit).

    Parameters
    ----------
    w : ndarray of shape (n,), fractions of equity
    tolerance : float, optional
        Slack in weight units (default ``limits.tolerance``); volatility gets a relative
        slack of 1e-4 on top.
    """
    tol = limits.tolerance if tolerance is None else tolerance
    w = np.asarray(w, dtype=float)
    if w.shape != (problem.n,) or not np.all(np.isfinite(w)):
        return ["weights are not a finite vector over the problem's names"]
    found: list[str] = []
    if limits.long_only and w.min(initial=0.0) < -tol:
        found.append(f"negative weight {w.min():.6g} in a long-only book")
    largest = float(np.abs(w).max(initial=0.0))
    if largest > limits.max_weight + tol:
        found.append(f"weight {largest:.6g} above max_weight {limits.max_weight:.6g}")
    if limits.max_sector_weight is not None and problem.sectors.size:
        worst = float(_sector_gross(w, problem.sectors).max(initial=0.0))
        if worst > limits.max_sector_weight + tol:
            found.append(
                f"sector weight {worst:.6g} above max_sector_weight {limits.max_sector_weight:.6g}"
            )
    gross = float(np.abs(w).sum())
    if gross > limits.gross_cap + tol:
        found.append(f"gross exposure {gross:.6g} above the cap {limits.gross_cap:.6g}")
    net = float(w.sum())
    if not limits.long_only and not (limits.min_net - tol <= net <= limits.max_net + tol):
        found.append(f"net exposure {net:.6g} outside [{limits.min_net:.6g}, {limits.max_net:.6g}]")
    held = np.abs(w[np.abs(w) > _ZERO])
    if limits.min_position > 0 and held.size and held.min() < limits.min_position - tol:
        found.append(f"position {held.min():.6g} below min_position {limits.min_position:.6g}")
    if limits.vol_target is not None:
        vol = problem.volatility(w)
        if vol > limits.vol_target * (1 + _VOL_RTOL) + tol:
            found.append(f"ex-ante volatility {vol:.6g} above vol_target {limits.vol_target:.6g}")
    if limits.turnover_cap is not None:
        moved = turnover(w, problem)
        if moved > limits.turnover_cap + tol:
            found.append(f"turnover {moved:.6g} above turnover_cap {limits.turnover_cap:.6g}")
    return found
