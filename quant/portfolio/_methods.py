"""Portfolio construction methods: raw weights from one day's :class:`Problem`.

Each method has the signature ``(problem, limits, settings, *, with_turnover) -> ndarray``
and returns weights of shape (n,) as fractions of equity. The solvers get the
limits they can express; :func:`quant.portfolio.enforce_limits` makes the result
exact afterwards. A solver failure or an infeasible problem raises
:class:`~quant.exceptions.OptimizationError`.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd

from quant.config import PortfolioSettings
from quant.exceptions import OptimizationError
from quant.portfolio._costs import annual_cost_rate, swap_hurdle
from quant.portfolio._limits import Limits, Problem
from quant.portfolio._risk import TRADING_DAYS

__all__ = [
    "METHODS",
    "Method",
    "cvar",
    "expected_returns_from_scores",
    "hrp",
    "hrp_weights",
    "mean_variance",
    "min_volatility",
    "risk_parity",
    "top_k",
    "uses_turnover",
]

Method = Callable[..., np.ndarray]

_CLARABEL_OPTIONS = {"tol_gap_rel": 1e-6, "tol_gap_abs": 1e-7, "tol_feas": 1e-6}


def expected_returns_from_scores(
    scores: np.ndarray, cov: np.ndarray, information_coefficient: float
) -> np.ndarray:
    """Annualised expected returns from scores: ``ic x sigma_i x z_i`` (Grinold's alpha).

    ``z`` is the cross-sectional z-score of the scores, clipped to [-3, 3];
    ``sigma_i`` is the name's annualised volatility from ``cov``.

    Parameters
    ----------
    scores : ndarray of shape (n,)
    cov : ndarray of shape (n, n), annualised
    information_coefficient : float

    Returns
    -------
    ndarray of shape (n,), annualised return units
    """
    scores = np.asarray(scores, dtype=float)
    spread = scores.std()
    z = np.zeros_like(scores) if spread <= 0 else (scores - scores.mean()) / spread
    sigma = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    return information_coefficient * sigma * np.clip(z, -3.0, 3.0)


def uses_turnover(method: str, settings: PortfolioSettings) -> bool:
    """Whether ``method``'s solver takes the turnover cap or penalty."""
    return method in ("mean_variance", "min_volatility") and (
        settings.turnover_cap is not None or settings.turnover_penalty > 0
    )


# -- PyPortfolioOpt -----------------------------------------------------------------------------


def _efficient_frontier(
    problem: Problem, limits: Limits, settings: PortfolioSettings, *, with_turnover: bool
):
    import cvxpy as cp
    from pypfopt import EfficientFrontier, objective_functions

    lower = 0.0 if limits.long_only else -limits.max_weight
    ef = EfficientFrontier(
        pd.Series(problem.expected_returns, index=problem.symbols),
        pd.DataFrame(problem.cov, index=problem.symbols, columns=problem.symbols),
        weight_bounds=(lower, limits.max_weight),
        solver="CLARABEL",
    )
    if limits.long_only:
        ef.add_constraint(lambda w: cp.sum(w) == limits.gross_cap)
    else:
        ef.add_constraint(lambda w: cp.norm1(w) <= limits.gross_cap)
        ef.add_constraint(lambda w: cp.sum(w) >= limits.min_net)
        ef.add_constraint(lambda w: cp.sum(w) <= limits.max_net)
    if limits.max_sector_weight is not None and problem.sectors.size:
        sectors, cap = problem.sectors, limits.max_sector_weight
        if limits.long_only:
            ef.add_constraint(lambda w: sectors @ w <= cap)
        else:
            ef.add_constraint(lambda w: sectors @ cp.abs(w) <= cap)
    if with_turnover:
        current, outside = problem.current, problem.current_outside
        if settings.turnover_cap is not None:
            cap_to = settings.turnover_cap - outside
            ef.add_constraint(lambda w: cp.norm1(w - current) <= cap_to)
        if settings.turnover_penalty > 0:
            # the objective is in annualised return units: the cost of a trade counts once per
            # cost_horizon_sessions, the time its expected return takes to be earned
            ef.add_objective(
                objective_functions.transaction_cost,
                w_prev=_cost_anchor(problem, limits),
                k=annual_cost_rate(settings),
            )
    return ef


def _cost_anchor(problem: Problem, limits: Limits) -> np.ndarray:
    """The current book as the solver sees it, the reference of the cost term.

    A long-only solver must invest exactly the gross cap, while the book it starts from
    was scaled to the volatility target after its own solve: costed against the book as
    held, every solve would pay for re-investing that difference and place it wherever
    the day's noise points. The current book scaled to the budget is what the solver's
    weights are comparable with; the scaling after the solve is the same proportional
    step for both.
    """
    current = problem.current
    if not limits.long_only:
        return current
    held = float(np.clip(current, 0.0, None).sum())
    if held <= 1e-12:
        return current
    return np.clip(current, 0.0, None) * (limits.gross_cap / held)


def _solve(ef, objective, **kwargs) -> np.ndarray:
    import cvxpy as cp
    from pypfopt import exceptions as pypfopt_exceptions

    try:
        ef.convex_objective(objective, weights_sum_to_one=False, **kwargs)
    except (pypfopt_exceptions.OptimizationError, cp.error.SolverError, ValueError) as exc:
        detail = " ".join(str(a) for a in exc.args) or repr(exc.__cause__ or exc)
        raise OptimizationError(f"solver failed: {detail}") from exc
    if ef.weights is None:
        raise OptimizationError("solver returned no weights")
    return np.asarray(ef.weights, dtype=float)


def mean_variance(
    problem: Problem, limits: Limits, settings: PortfolioSettings, *, with_turnover: bool = True
) -> np.ndarray:
    """Maximum quadratic utility ``mu'w - risk_aversion/2 w'Sigma w - l2_gamma |w|^2`` (PyPortfolioOpt)."""
    from pypfopt import objective_functions

    ef = _efficient_frontier(problem, limits, settings, with_turnover=with_turnover)
    if settings.l2_gamma > 0:
        ef.add_objective(objective_functions.L2_reg, gamma=settings.l2_gamma)
    return _solve(
        ef,
        objective_functions.quadratic_utility,
        expected_returns=problem.expected_returns,
        cov_matrix=problem.cov,
        risk_aversion=settings.risk_aversion,
    )


def min_volatility(
    problem: Problem, limits: Limits, settings: PortfolioSettings, *, with_turnover: bool = True
) -> np.ndarray:
    """Minimum variance under the limits (PyPortfolioOpt)."""
    from pypfopt import objective_functions

    ef = _efficient_frontier(problem, limits, settings, with_turnover=with_turnover)
    return _solve(ef, objective_functions.portfolio_variance, cov_matrix=problem.cov)


def hrp_weights(cov: np.ndarray) -> np.ndarray:
    """Hierarchical risk parity weights (López de Prado 2016), summing to 1.

    Single-linkage clustering on the distance sqrt((1 - corr) / 2), leaves in
    dendrogram order, then recursive bisection splitting weight in inverse
    proportion to each half's inverse-variance cluster variance; the same algorithm
    as PyPortfolioOpt's ``HRPOpt`` on NumPy arrays (fast for hundreds of names).

    Parameters
    ----------
    cov : ndarray of shape (n, n)

    Returns
    -------
    ndarray of shape (n,), long-only, sums to 1
    """
    import scipy.cluster.hierarchy as sch
    import scipy.spatial.distance as ssd

    n = len(cov)
    if n == 1:
        return np.ones(1)
    std = np.sqrt(np.clip(np.diag(cov), 1e-20, None))
    corr = np.clip(cov / np.outer(std, std), -1.0, 1.0)
    dist = np.sqrt(np.clip((1.0 - corr) / 2.0, 0.0, None))
    np.fill_diagonal(dist, 0.0)
    link = sch.linkage(ssd.squareform(dist, checks=False), "single")
    order = sch.leaves_list(link)
    inv_var = 1.0 / np.diag(cov)
    weights = np.ones(n)

    def cluster_var(items: np.ndarray) -> float:
        ivp = inv_var[items] / inv_var[items].sum()
        return float(ivp @ cov[np.ix_(items, items)] @ ivp)

    clusters = [order]
    while clusters:
        split = []
        for items in clusters:
            if len(items) > 1:
                half = len(items) // 2
                split += [items[:half], items[half:]]
        for left, right in zip(split[0::2], split[1::2], strict=True):
            var_left, var_right = cluster_var(left), cluster_var(right)
            alpha = 1.0 - var_left / (var_left + var_right)
            weights[left] *= alpha
            weights[right] *= 1.0 - alpha
        clusters = split
    return weights / weights.sum()


def hrp(
    problem: Problem, limits: Limits, settings: PortfolioSettings, *, with_turnover: bool = True
) -> np.ndarray:
    """Hierarchical risk parity (:func:`hrp_weights`), long-only, scaled to the gross cap."""
    try:
        w = hrp_weights(problem.cov)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
        raise OptimizationError(f"hierarchical risk parity failed: {exc}") from exc
    if not np.all(np.isfinite(w)):
        raise OptimizationError("hierarchical risk parity returned non-finite weights")
    return w * limits.gross_cap


# -- riskfolio-lib ------------------------------------------------------------------------------


def _riskfolio_portfolio(problem: Problem, *, covariance: bool = True):
    """A riskfolio-lib Portfolio on the problem's daily returns, expected returns and covariance.

    riskfolio-lib takes the matrix square root of ``port.cov`` in every model it
    builds. The CVaR model does not use the covariance, so ``covariance=False``
    passes only its diagonal, whose square root is immediate.
    """
    import riskfolio as rp

    symbols = list(problem.symbols)
    returns = pd.DataFrame(problem.returns, columns=symbols)
    port = rp.Portfolio(returns=returns)
    port.solvers = ["CLARABEL", "SCS"]
    # weights are repaired to 1e-6 anyway: looser gaps than CLARABEL's 1e-8 halve the time
    port.sol_params = {"CLARABEL": _CLARABEL_OPTIONS, "SCS": {}}
    port.mu = pd.DataFrame([problem.expected_returns / TRADING_DAYS], columns=symbols)
    cov = problem.cov if covariance else np.diag(np.diag(problem.cov))
    port.cov = pd.DataFrame(cov / TRADING_DAYS, index=symbols, columns=symbols)
    return port


def _symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix by its eigen-decomposition."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


@contextlib.contextmanager
def _fast_riskfolio_sqrtm() -> Iterator[None]:
    """During the call, riskfolio-lib's covariance square root uses :func:`_symmetric_sqrt`.

    riskfolio-lib calls SciPy's general ``sqrtm`` (a Schur decomposition, about a
    second for 500 names here) on the covariance; for a symmetric positive
    semi-definite matrix the eigen-decomposition gives the same matrix several
    times faster.
    """
    import importlib
    from unittest import mock

    # the package re-exports the Portfolio class under the module's name: fetch the module
    module = importlib.import_module("riskfolio.src.Portfolio")
    if not hasattr(module, "sqrtm"):  # a later riskfolio-lib: nothing to substitute
        yield
        return
    with mock.patch.object(module, "sqrtm", _symmetric_sqrt):
        yield


def _run_riskfolio(call: Callable[[], pd.DataFrame | None], problem: Problem) -> np.ndarray:
    import cvxpy as cp

    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            optimal = call()
    except (cp.error.SolverError, cp.error.DCPError, ValueError, ArithmeticError) as exc:
        raise OptimizationError(f"riskfolio-lib failed: {exc}") from exc
    if optimal is None:
        message = printed.getvalue().strip() or "no solution"
        raise OptimizationError(f"riskfolio-lib: {message}")
    w = optimal["weights"].reindex(list(problem.symbols)).to_numpy(dtype=float)
    if not np.all(np.isfinite(w)):
        raise OptimizationError("riskfolio-lib returned non-finite weights")
    return w


def risk_parity(
    problem: Problem, limits: Limits, settings: PortfolioSettings, *, with_turnover: bool = True
) -> np.ndarray:
    """Equal risk contribution of every name (riskfolio-lib ``rp_optimization``), long-only,
    scaled to the gross cap."""
    port = _riskfolio_portfolio(problem)
    with _fast_riskfolio_sqrtm():
        w = _run_riskfolio(
            lambda: port.rp_optimization(model="Classic", rm="MV", rf=0, b=None, hist=True),
            problem,
        )
    w = np.clip(w, 0.0, None)
    if w.sum() <= 0:
        raise OptimizationError("risk parity returned no weight")
    return w / w.sum() * limits.gross_cap


def cvar(
    problem: Problem, limits: Limits, settings: PortfolioSettings, *, with_turnover: bool = True
) -> np.ndarray:
    """Mean-CVaR utility ``mu'w - risk_aversion x CVaR_alpha(w)`` over the historical
    scenarios (riskfolio-lib ``optimization``, rm='CVaR'), with name and sector caps."""
    port = _riskfolio_portfolio(problem, covariance=False)
    port.alpha = settings.cvar_alpha
    port.upperlng = limits.max_weight
    if limits.long_only:
        port.sht = False
        port.budget = limits.gross_cap
    else:
        net = float(np.clip(0.0, limits.min_net, limits.max_net))
        port.sht = True
        port.budget = net
        port.budgetsht = max((limits.gross_cap - net) / 2.0, 0.0)
        port.uppersht = limits.max_weight
    if limits.max_sector_weight is not None and problem.sectors.size:
        port.ainequality = problem.sectors
        port.binequality = np.full((problem.sectors.shape[0], 1), limits.max_sector_weight)
    return _run_riskfolio(
        lambda: port.optimization(
            model="Classic", rm="CVaR", obj="Utility", rf=0, l=settings.risk_aversion, hist=True
        ),
        problem,
    )


# -- baseline -----------------------------------------------------------------------------------


def _pick(
    order: np.ndarray,
    held: np.ndarray,
    k: int,
    max_drops: int,
    value: np.ndarray | None = None,
    hurdle: float = 0.0,
) -> np.ndarray:
    """Indices to hold: the ``k`` best of ``order`` (best first), replacing at most ``max_drops``
    of the ``held`` indices per day, the worst-ranked first. Held names missing from ``order``
    always leave.

    With ``value`` (expected returns, the side's sign applied) and a ``hurdle`` > 0, a held
    name is replaced only when the newcomer's value beats its own by more than the hurdle
    (the round-trip cost): a swap that does not pay for itself is not made. Empty slots
    are filled without a hurdle."""
    rank = {int(i): r for r, i in enumerate(order)}
    best = {int(i) for i in order[:k]}
    held_ranked = [int(i) for i in held if int(i) in rank]
    kept = [i for i in held_ranked if i in best]
    leaving = sorted((i for i in held_ranked if i not in best), key=rank.__getitem__)
    n_drops = min(max_drops, len(leaving))
    kept += leaving[: len(leaving) - n_drops]
    chosen = set(kept)
    new = [int(i) for i in order if int(i) not in chosen][: max(k - len(chosen), 0)]
    if value is not None and hurdle > 0 and n_drops:
        dropping = leaving[len(leaving) - n_drops :][::-1]  # the worst first
        newcomers = [i for i in new if i not in set(dropping)]  # the best first
        for j, out in enumerate(dropping):
            if j < len(newcomers) and value[newcomers[j]] - value[out] > hurdle:
                continue
            chosen.add(out)  # the swap does not pay for its cost: keep the name
        new = [int(i) for i in order if int(i) not in chosen][: max(k - len(chosen), 0)]
    return np.array(sorted(chosen | set(new)), dtype=int)


def top_k(
    problem: Problem, limits: Limits, settings: PortfolioSettings, *, with_turnover: bool = True
) -> np.ndarray:
    """Equal weight over the ``top_k`` best scores; at most ``top_k_max_drops`` held names are
    replaced per day, and only when the newcomer's expected return beats the held name's by
    the round-trip cost (:func:`quant.portfolio._costs.swap_hurdle`; with no conviction no
    swap pays and the book is kept). Long/short books also short the ``top_k`` worst scores
    (half the gross cap per side)."""
    k = min(settings.top_k, problem.n)
    order = np.argsort(-problem.scores, kind="stable")
    w = np.zeros(problem.n)
    mu, hurdle, drops = problem.expected_returns, swap_hurdle(settings), settings.top_k_max_drops
    if limits.long_only:
        longs = _pick(order, np.flatnonzero(problem.current > 0), k, drops, mu, hurdle)
        w[longs] = limits.gross_cap / len(longs)
        return w
    k = min(k, problem.n // 2)
    if k == 0:
        raise OptimizationError("top_k long/short needs at least 2 names")
    longs = _pick(order, np.flatnonzero(problem.current > 0), k, drops, mu, hurdle)
    taken = set(longs.tolist())
    pool = np.array([i for i in order[::-1] if int(i) not in taken], dtype=int)
    shorts = _pick(pool, np.flatnonzero(problem.current < 0), k, drops, -mu, hurdle)
    w[longs] = limits.gross_cap / 2.0 / len(longs)
    w[shorts] = -limits.gross_cap / 2.0 / len(shorts)
    return w


METHODS: dict[str, Method] = {
    "mean_variance": mean_variance,
    "min_volatility": min_volatility,
    "hrp": hrp,
    "risk_parity": risk_parity,
    "cvar": cvar,
    "top_k": top_k,
}
"""Construction methods by name."""
