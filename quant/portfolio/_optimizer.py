"""The portfolio optimiser: builds the day's problem, runs a method, repairs, verifies, falls back.

The fallback chain (``PortfolioSettings.fallback_chain``, default
``relax_turnover -> hrp -> hold``) is walked when a method raises
:class:`~quant.exceptions.OptimizationError` (solver error, infeasible
constraints) or its repaired weights fail :func:`check_limits`:

``primary``
    the requested method with every limit;
``relax_turnover``
    the same method without the turnover constraint and penalty in its solver
    (the repair step still caps turnover by moving only part of the way);
``hrp``
    hierarchical risk parity, repaired the same way;
``hold``
    the current weights, trimmed to the limits (never scaled up); the turnover
    cap is not applied, since the trim itself may exceed it;
``cash``
    all weights zero: always within the limits, the last resort.

Every attempt is recorded in :attr:`PortfolioResult.attempts`.

Costs (:mod:`quant.portfolio._costs`): the PyPortfolioOpt methods carry the cost
term in their objective, ``cvar`` gets it in a post-step and ``top_k`` in its
selection; every method's weights then pass the no-trade band. The expected
returns are scaled by the conviction (:mod:`quant.portfolio._conviction`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from quant.config import PORTFOLIO_METHODS, PortfolioSettings
from quant.exceptions import (
    ConfigurationError,
    LimitViolationError,
    OptimizationError,
    PortfolioError,
)
from quant.portfolio._conviction import Conviction
from quant.portfolio._costs import apply_no_trade_band, cost_aware_move, expected_cost
from quant.portfolio._limits import (
    Limits,
    Problem,
    check_limits,
    enforce_limits,
    sector_matrix,
    turnover,
)
from quant.portfolio._methods import METHODS, expected_returns_from_scores, uses_turnover
from quant.portfolio._risk import RiskModel, risk_model_from_settings, trailing_returns

__all__ = ["Attempt", "PortfolioOptimizer", "PortfolioResult"]

log = logging.getLogger(__name__)

_UNCLASSIFIED = "\x00unclassified:"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One step of the chain: what ran, whether its weights were kept, and why not."""

    stage: str
    method: str
    ok: bool
    reason: str | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "method": self.method,
            "ok": self.ok,
            "reason": self.reason,
            "seconds": round(self.seconds, 4),
        }


@dataclass(frozen=True, slots=True)
class PortfolioResult:
    """Target weights of one day and how they were obtained.

    Attributes
    ----------
    weights : Series indexed by symbol, fractions of equity
        Every eligible name (zeros included) and every currently held name (zero
        when it left the problem).
    method : str
        The method asked for.
    method_used : str
        The method whose weights were kept (``hold`` and ``cash`` for those stages).
    stage : str
        ``primary`` or the fallback step that produced the weights.
    limits_relaxed : tuple of str
        Limits the kept weights were not checked against (``turnover_cap`` for
        ``hold`` and ``cash``).
    ex_ante_vol : float
        Annualised volatility of the weights under the risk model.
    expected_return : float
        Annualised expected return from the scores (mu'w).
    turnover : float
        sum(|w - w_current|).
    vol_scale : float
        Factor the volatility target applied (1 when it did not bind).
    excluded : tuple of str
        Scored names left out for too short a return history.
    expected_cost : float
        ``turnover_penalty x turnover``, fraction of equity.
    band_held_back : int
        Names whose (small) trade the no-trade band skipped.
    warnings : tuple of str
        What the user should know about these weights (also logged).
    conviction : Conviction or None
        The IC the expected returns were scaled by, and its source.
    """

    weights: pd.Series
    method: str
    method_used: str
    stage: str
    attempts: tuple[Attempt, ...]
    limits_relaxed: tuple[str, ...]
    ex_ante_vol: float
    expected_return: float
    turnover: float
    vol_scale: float
    excluded: tuple[str, ...] = field(default=())
    expected_cost: float = 0.0
    band_held_back: int = 0
    warnings: tuple[str, ...] = field(default=())
    conviction: Conviction | None = None

    @property
    def fallback_used(self) -> bool:
        return self.stage != "primary"

    @property
    def n_names(self) -> int:
        return int((self.weights.abs() > 0).sum())

    @property
    def gross_exposure(self) -> float:
        return float(self.weights.abs().sum())

    @property
    def net_exposure(self) -> float:
        return float(self.weights.sum())

    def diagnostics(self) -> dict[str, Any]:
        """The run's figures as plain JSON-ready values."""
        return {
            "method": self.method,
            "method_used": self.method_used,
            "stage": self.stage,
            "fallback_used": self.fallback_used,
            "limits_relaxed": list(self.limits_relaxed),
            "ex_ante_vol": self.ex_ante_vol,
            "expected_return": self.expected_return,
            "turnover": self.turnover,
            "n_names": self.n_names,
            "gross_exposure": self.gross_exposure,
            "net_exposure": self.net_exposure,
            "vol_scale": self.vol_scale,
            "excluded": list(self.excluded),
            "attempts": [a.to_dict() for a in self.attempts],
            "expected_cost": self.expected_cost,
            "band_held_back": self.band_held_back,
            "warnings": list(self.warnings),
            "conviction": None if self.conviction is None else self.conviction.to_dict(),
        }


class PortfolioOptimizer:
    """Turns scores into target weights within the configured limits.

    Parameters
    ----------
    settings : PortfolioSettings, optional
        Method, limits and fallback chain (default: ``PortfolioSettings()``).
    risk_model : RiskModel, optional
        Covariance estimator (default: the one ``settings.risk_model`` names).
    """

    def __init__(
        self, settings: PortfolioSettings | None = None, risk_model: RiskModel | None = None
    ) -> None:
        self.settings = settings or PortfolioSettings()
        self.risk_model = risk_model or risk_model_from_settings(self.settings)
        self.limits = Limits.from_settings(self.settings)

    # -- inputs -------------------------------------------------------------------------------

    def build_problem(
        self,
        scores: pd.Series,
        returns: pd.DataFrame,
        *,
        current_weights: pd.Series | None = None,
        sectors: pd.Series | None = None,
        as_of: date | pd.Timestamp | None = None,
        information_coefficient: float | None = None,
    ) -> tuple[Problem, tuple[str, ...]]:
        """The day's :class:`Problem` over the scored names with enough return history.

        Parameters
        ----------
        scores : Series indexed by symbol
        returns : DataFrame of shape (n_sessions, n_symbols), daily returns indexed by
            session date; rows after ``as_of`` are ignored
        current_weights : Series indexed by symbol, optional (default: no positions)
        sectors : Series indexed by symbol, optional
            Sector labels; ``None`` switches the sector cap off, and a name without a
            label is capped as a sector of its own.
        as_of : date, optional
        information_coefficient : float, optional
            The IC the expected returns are scaled by (default ``settings.score_ic``);
            0 gives expected returns of 0 (no conviction).

        Returns
        -------
        problem : Problem
        excluded : tuple of str
            Scored names without ``min_history_sessions`` returns in the window.
        """
        s = self.settings
        scores = scores[np.isfinite(scores.astype(float))].astype(float)
        scores = scores[~scores.index.duplicated(keep="last")].sort_index()
        if scores.empty:
            raise PortfolioError("no finite scores to build a portfolio from")
        window = trailing_returns(returns, as_of, s.lookback_sessions)
        window = window.reindex(columns=scores.index)
        counts = window.notna().sum()
        eligible = counts.index[counts >= s.min_history_sessions]
        excluded = tuple(sorted(set(scores.index) - set(eligible)))
        if len(eligible) == 0:
            raise PortfolioError(
                f"none of {len(scores)} scored names has {s.min_history_sessions} returns "
                f"in the {len(window)} sessions up to {as_of}"
            )
        symbols = tuple(eligible)
        window = window[list(symbols)]
        cov = self.risk_model.covariance(window).loc[list(symbols), list(symbols)].to_numpy()
        score_values = scores.loc[list(symbols)].to_numpy()
        current = pd.Series(0.0, index=list(symbols))
        outside = 0.0
        if current_weights is not None and len(current_weights):
            cw = current_weights.astype(float).fillna(0.0)
            cw = cw.groupby(level=0).sum()
            inside = cw.index.isin(symbols)
            current = cw[inside].reindex(list(symbols)).fillna(0.0)
            outside = float(cw[~inside].abs().sum())
        if sectors is None:
            sector_rows = np.zeros((0, len(symbols)))
        else:
            # a name without a sector is a sector of its own (it is not pooled with others)
            labels = sectors.reindex(list(symbols)).astype(object)
            missing = labels.isna().to_numpy()
            labels = np.where(
                missing, [f"{_UNCLASSIFIED}{s}" for s in symbols], labels.astype(str).to_numpy()
            )
            sector_rows = sector_matrix(labels)
        ic = s.score_ic if information_coefficient is None else float(information_coefficient)
        problem = Problem(
            symbols=symbols,
            scores=score_values,
            expected_returns=expected_returns_from_scores(score_values, cov, ic),
            cov=cov,
            returns=window.fillna(0.0).to_numpy(dtype=float),
            current=current.to_numpy(dtype=float),
            current_outside=outside,
            sectors=sector_rows,
        )
        return problem, excluded

    # -- the chain ------------------------------------------------------------------------------

    def optimize(
        self,
        scores: pd.Series,
        returns: pd.DataFrame,
        *,
        current_weights: pd.Series | None = None,
        sectors: pd.Series | None = None,
        method: str | None = None,
        as_of: date | pd.Timestamp | None = None,
        conviction: Conviction | None = None,
    ) -> PortfolioResult:
        """Target weights for one day (see :meth:`build_problem` for the inputs).

        ``conviction``: the IC the expected returns are scaled by (default
        ``settings.score_ic``), recorded in the result.

        Raises
        ------
        ConfigurationError
            ``method`` is not a known method.
        PortfolioError
            No scored name has enough history.
        """
        problem, excluded = self.build_problem(
            scores,
            returns,
            current_weights=current_weights,
            sectors=sectors,
            as_of=as_of,
            information_coefficient=None if conviction is None else conviction.ic,
        )
        result = self.solve(problem, method=method)
        extra = (
            current_weights.index.difference(pd.Index(problem.symbols))
            if current_weights is not None
            else pd.Index([])
        )
        weights = pd.concat([result.weights, pd.Series(0.0, index=extra)]).sort_index()
        return PortfolioResult(
            weights=weights,
            method=result.method,
            method_used=result.method_used,
            stage=result.stage,
            attempts=result.attempts,
            limits_relaxed=result.limits_relaxed,
            ex_ante_vol=result.ex_ante_vol,
            expected_return=result.expected_return,
            turnover=result.turnover,
            vol_scale=result.vol_scale,
            excluded=excluded,
            expected_cost=result.expected_cost,
            band_held_back=result.band_held_back,
            warnings=result.warnings,
            conviction=conviction,
        )

    def solve(self, problem: Problem, *, method: str | None = None) -> PortfolioResult:
        """Run ``method`` on ``problem`` and walk the fallback chain until weights pass every check."""
        name = method or self.settings.optimizer
        if name not in METHODS:
            raise ConfigurationError(
                f"optimizer {name!r} is unknown; known: {', '.join(PORTFOLIO_METHODS)}"
            )
        limits = self.limits
        relaxed = limits.without_turnover_cap()
        anchor, anchor_scale = enforce_limits(
            problem.current, problem, relaxed, redistribute=False, scale_up=False
        )
        attempts: list[Attempt] = []
        tried: set[tuple[str, bool]] = set()

        plan: list[tuple[str, str, bool]] = [("primary", name, True)]
        for step in self.settings.fallback_chain:
            if step == "relax_turnover":
                plan.append(("relax_turnover", name, False))
            elif step == "hrp":
                plan.append(("hrp", "hrp", False))
            else:
                plan.append(("hold", "hold", False))

        for stage, method_name, with_turnover in plan:
            started = time.perf_counter()
            if method_name == "hold":
                violations = check_limits(anchor, problem, relaxed)
                if not violations:
                    attempts.append(
                        Attempt(stage, "hold", True, None, time.perf_counter() - started)
                    )
                    return self._result(
                        problem,
                        name,
                        stage,
                        "hold",
                        anchor,
                        anchor_scale,
                        attempts,
                        ("turnover_cap",),
                    )
                attempts.append(
                    Attempt(
                        stage, "hold", False, "; ".join(violations), time.perf_counter() - started
                    )
                )
                continue
            effective = with_turnover and uses_turnover(method_name, self.settings)
            if (method_name, effective) in tried:
                attempts.append(
                    Attempt(stage, method_name, False, "skipped: same as an earlier attempt", 0.0)
                )
                continue
            tried.add((method_name, effective))
            try:
                raw = METHODS[method_name](problem, limits, self.settings, with_turnover=effective)
                weights, vol_scale = enforce_limits(raw, problem, limits, anchor=anchor)
                violations = check_limits(weights, problem, limits)
                if violations:
                    raise LimitViolationError(violations)
                if method_name == "cvar" and with_turnover:
                    weights = cost_aware_move(weights, problem, limits, self.settings, anchor)
            except (OptimizationError, LimitViolationError) as exc:
                attempts.append(
                    Attempt(stage, method_name, False, str(exc), time.perf_counter() - started)
                )
                continue
            attempts.append(Attempt(stage, method_name, True, None, time.perf_counter() - started))
            return self._result(
                problem, name, stage, method_name, weights, vol_scale, attempts, (), band=True
            )

        cash = np.zeros(problem.n)
        attempts.append(Attempt("cash", "cash", True, None, 0.0))
        return self._result(problem, name, "cash", "cash", cash, 0.0, attempts, ("turnover_cap",))

    def _result(
        self,
        problem: Problem,
        method: str,
        stage: str,
        method_used: str,
        weights: np.ndarray,
        vol_scale: float,
        attempts: list[Attempt],
        relaxed: tuple[str, ...],
        *,
        band: bool = False,
    ) -> PortfolioResult:
        relaxed = relaxed if self.limits.turnover_cap is not None else ()
        warnings = self._warnings(problem, method)
        held_back = 0
        if band:
            weights, held_back, skipped = apply_no_trade_band(
                weights, problem, self.limits, self.settings.no_trade_band
            )
            if skipped:
                warnings.append(skipped)
        for message in warnings:
            log.warning("portfolio: %s", message)
        return PortfolioResult(
            weights=pd.Series(weights, index=list(problem.symbols), dtype=float),
            method=method,
            method_used=method_used,
            stage=stage,
            attempts=tuple(attempts),
            limits_relaxed=relaxed,
            ex_ante_vol=problem.volatility(weights),
            expected_return=float(problem.expected_returns @ weights),
            turnover=turnover(weights, problem),
            vol_scale=float(vol_scale),
            expected_cost=expected_cost(weights, problem, self.settings),
            band_held_back=held_back,
            warnings=tuple(warnings),
        )

    def _warnings(self, problem: Problem, method: str) -> list[str]:
        """What a user should know about the day's problem and method."""
        found = []
        if method == "top_k":
            per_side = problem.n if self.limits.long_only else problem.n // 2
            if self.settings.top_k >= per_side:
                found.append(
                    f"top_k ({self.settings.top_k}) is not below the {per_side} names "
                    f"{'eligible' if self.limits.long_only else 'per side'}: top_k holds every "
                    "name, an equal-weight book scaled to the volatility target"
                )
        return found
