"""Performance statistics of a daily return series, and the Sharpe ratio's significance.

Conventions (every function here follows them):

- Returns are simple daily returns, fractions (0.01 = 1 %), one per session.
- The Sharpe ratio is mean / standard deviation with ``ddof=1`` and no
  risk-free rate; "per period" means not annualised, "annualised" multiplies
  by ``sqrt(periods_per_year)``.
- Skewness and kurtosis are the moment ratios of the population form:
  ``m3 / m2**1.5`` and ``m4 / m2**2`` (kurtosis of a normal = 3, not excess).

The probabilistic Sharpe ratio (PSR) is from Bailey and López de Prado, "The
Sharpe Ratio Efficient Frontier", Journal of Risk 15(2), 2012; the deflated
Sharpe ratio (DSR) from Bailey and López de Prado, "The Deflated Sharpe
Ratio: Correcting for Selection Bias, Backtest Overfitting and Non-Normality",
Journal of Portfolio Management 40(5), 2014.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import pandas as pd

__all__ = [
    "DRAWDOWN_COLUMNS",
    "EULER_GAMMA",
    "annualised_volatility",
    "cagr",
    "calmar_ratio",
    "conditional_value_at_risk",
    "deflated_sharpe_ratio",
    "drawdown_periods",
    "drawdown_series",
    "expected_max_sharpe",
    "hit_rate",
    "information_coefficients",
    "kurtosis",
    "max_drawdown",
    "monthly_returns",
    "probabilistic_sharpe_ratio",
    "psr_from_moments",
    "rolling_sharpe",
    "rolling_volatility",
    "series_summary",
    "sharpe_ratio",
    "sharpe_ratio_std",
    "skewness",
    "sortino_ratio",
    "value_at_risk",
]

EULER_GAMMA = 0.5772156649015329
"""The Euler-Mascheroni constant (the DSR's expected maximum of N Sharpe ratios)."""

_NORMAL = NormalDist()


def _clean(returns: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = np.asarray(returns, dtype=float)
    return arr[np.isfinite(arr)]


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def sharpe_ratio(returns: Sequence[float] | np.ndarray, periods_per_year: int = 1) -> float:
    """Mean over standard deviation (``ddof=1``), times ``sqrt(periods_per_year)``.

    Parameters
    ----------
    returns : array-like of shape (n_periods,)
        Simple returns, fractions; NaN are left out.
    periods_per_year : int
        1 gives the per-period ratio; 252 annualises daily returns.

    Returns
    -------
    float
        NaN with fewer than two returns or a zero standard deviation.
    """
    r = _clean(returns)
    if r.size < 2:
        return math.nan
    sd = float(np.std(r, ddof=1))
    if sd == 0:
        return math.nan
    return float(np.mean(r)) / sd * math.sqrt(periods_per_year)


def skewness(returns: Sequence[float] | np.ndarray) -> float:
    """Population skewness ``m3 / m2**1.5`` (NaN for a constant series)."""
    r = _clean(returns)
    d = r - r.mean()
    m2 = float(np.mean(d**2))
    return float(np.mean(d**3)) / m2**1.5 if m2 > 0 else math.nan


def kurtosis(returns: Sequence[float] | np.ndarray) -> float:
    """Population kurtosis ``m4 / m2**2`` (3 for a normal; NaN for a constant series)."""
    r = _clean(returns)
    d = r - r.mean()
    m2 = float(np.mean(d**2))
    return float(np.mean(d**4)) / m2**2 if m2 > 0 else math.nan


def sharpe_ratio_std(sharpe: float, n: int, skew: float, kurt: float) -> float:
    """Standard error of a per-period Sharpe estimate under non-normal returns.

    ``sqrt((1 - skew * SR + (kurt - 1) / 4 * SR**2) / (n - 1))`` (Bailey and
    López de Prado 2012, eq. 8 with Mertens' variance).
    """
    if n < 2:
        return math.nan
    var = (1.0 - skew * sharpe + (kurt - 1.0) / 4.0 * sharpe**2) / (n - 1)
    return math.sqrt(var) if var > 0 else math.nan


def probabilistic_sharpe_ratio(
    returns: Sequence[float] | np.ndarray, benchmark_sharpe: float = 0.0
) -> float:
    """Probability that the true Sharpe ratio exceeds ``benchmark_sharpe``.

    ``PSR(SR*) = Phi((SR - SR*) * sqrt(n - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR**2))``
    with SR the per-period Sharpe ratio of the ``n`` returns, g3 their skewness
    and g4 their kurtosis (module conventions).

    Parameters
    ----------
    returns : array-like of shape (n_periods,)
        Simple returns, fractions.
    benchmark_sharpe : float
        SR*, per period (not annualised).

    Returns
    -------
    float
        In [0, 1]; NaN when the Sharpe ratio is undefined.
    """
    r = _clean(returns)
    sr = sharpe_ratio(r)
    if not math.isfinite(sr):
        return math.nan
    return psr_from_moments(sr, r.size, skewness(r), kurtosis(r), benchmark_sharpe)


def psr_from_moments(
    sharpe: float, n: int, skew: float, kurt: float, benchmark_sharpe: float = 0.0
) -> float:
    """PSR from the statistics of a series: per-period Sharpe ``sharpe`` of ``n``
    returns with skewness ``skew`` and kurtosis ``kurt`` (3 = normal), against
    the per-period ``benchmark_sharpe``; NaN when undefined."""
    sd = sharpe_ratio_std(sharpe, n, skew, kurt)
    if not math.isfinite(sd) or sd == 0:
        return math.nan
    return _NORMAL.cdf((sharpe - benchmark_sharpe) / sd)


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Expected largest of ``n_trials`` Sharpe estimates whose true value is zero.

    ``SR0 = sqrt(V) * ((1 - gamma) * Phi^-1(1 - 1/N) + gamma * Phi^-1(1 - 1/(N e)))``
    (Bailey and López de Prado 2014, eq. 2), gamma the Euler-Mascheroni
    constant, V the variance of the Sharpe estimates across the trials. One
    trial gives 0 (nothing was selected).
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if n_trials == 1:
        return 0.0
    if not sharpe_variance >= 0:
        return math.nan
    z1 = _NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
    z2 = _NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(sharpe_variance) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


def deflated_sharpe_ratio(
    returns: Sequence[float] | np.ndarray,
    n_trials: int,
    sharpe_variance: float | None = None,
) -> float:
    """PSR against the Sharpe ratio the best of ``n_trials`` would show by luck.

    ``DSR = PSR(SR0)`` with ``SR0 = expected_max_sharpe(n_trials, V)``.

    Parameters
    ----------
    returns : array-like of shape (n_periods,)
        Simple returns of the selected configuration, fractions.
    n_trials : int
        Configurations tried before this one was chosen (>= 1; 1 gives PSR(0)).
    sharpe_variance : float, optional
        Variance of the per-period Sharpe estimates across the trials. Default
        (when the trials' Sharpe ratios are unknown): the variance of this
        Sharpe estimate, ``sharpe_ratio_std(...)**2``, i.e. the spread the
        trials would show if they were as noisy as this one.
    """
    r = _clean(returns)
    sr = sharpe_ratio(r)
    if not math.isfinite(sr):
        return math.nan
    if sharpe_variance is None:
        sharpe_variance = sharpe_ratio_std(sr, r.size, skewness(r), kurtosis(r)) ** 2
    return probabilistic_sharpe_ratio(r, expected_max_sharpe(n_trials, sharpe_variance))


def cagr(equity: Sequence[float] | np.ndarray, periods_per_year: int = 252) -> float:
    """Compound annual growth: ``(E_last / E_first) ** (periods_per_year / n_returns) - 1``.

    Parameters
    ----------
    equity : array-like of shape (n_sessions,)
        Equity at each session's close, USD (the first value is the start).
    """
    e = np.asarray(equity, dtype=float)
    if e.size < 2 or e[0] <= 0 or e[-1] <= 0:
        return math.nan
    return float((e[-1] / e[0]) ** (periods_per_year / (e.size - 1)) - 1.0)


def annualised_volatility(
    returns: Sequence[float] | np.ndarray, periods_per_year: int = 252
) -> float:
    """Standard deviation (``ddof=1``) times ``sqrt(periods_per_year)``."""
    r = _clean(returns)
    if r.size < 2:
        return math.nan
    return float(np.std(r, ddof=1)) * math.sqrt(periods_per_year)


def sortino_ratio(returns: Sequence[float] | np.ndarray, periods_per_year: int = 252) -> float:
    """Mean over downside deviation ``sqrt(mean(min(r, 0)**2))``, annualised.

    NaN when no return is negative.
    """
    r = _clean(returns)
    if r.size < 2:
        return math.nan
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    if downside == 0:
        return math.nan
    return float(np.mean(r)) / downside * math.sqrt(periods_per_year)


def drawdown_series(equity: Sequence[float] | np.ndarray) -> np.ndarray:
    """``E / running max(E) - 1`` per session, fractions (0 at a new high, negative below)."""
    e = np.asarray(equity, dtype=float)
    if e.size == 0:
        return e
    return e / np.maximum.accumulate(e) - 1.0


def max_drawdown(equity: Sequence[float] | np.ndarray) -> float:
    """Largest peak-to-trough loss, a positive fraction (0.2 = 20 % below a previous high)."""
    dd = drawdown_series(equity)
    return float(-dd.min()) if dd.size else math.nan


def calmar_ratio(equity: Sequence[float] | np.ndarray, periods_per_year: int = 252) -> float:
    """CAGR over the maximum drawdown (NaN without a drawdown)."""
    mdd = max_drawdown(equity)
    if not mdd > 0:
        return math.nan
    return cagr(equity, periods_per_year) / mdd


def hit_rate(returns: Sequence[float] | np.ndarray) -> float:
    """Share of sessions with a positive return among those with a non-zero one."""
    r = _clean(returns)
    moved = r[r != 0]
    return float(np.mean(moved > 0)) if moved.size else math.nan


def information_coefficients(
    scores: np.ndarray, forward_returns: np.ndarray
) -> tuple[float, float]:
    """Pearson (IC) and Spearman (rank IC) correlation of one cross-section.

    Parameters
    ----------
    scores, forward_returns : ndarray of shape (n_names,)
        Pairs with a NaN are left out.

    Returns
    -------
    (ic, rank_ic)
        NaN with fewer than three pairs or a constant side.
    """
    s = np.asarray(scores, dtype=float)
    f = np.asarray(forward_returns, dtype=float)
    ok = np.isfinite(s) & np.isfinite(f)
    s, f = s[ok], f[ok]
    if s.size < 3 or np.std(s) == 0 or np.std(f) == 0:
        return math.nan, math.nan

    def _rank(x: np.ndarray) -> np.ndarray:
        return pd.Series(x).rank(method="average").to_numpy()

    ic = float(np.corrcoef(s, f)[0, 1])
    rs, rf = _rank(s), _rank(f)
    rank_ic = float(np.corrcoef(rs, rf)[0, 1]) if np.std(rs) > 0 and np.std(rf) > 0 else math.nan
    return ic, rank_ic


def series_summary(values: Sequence[float]) -> dict[str, float | None]:
    """Mean, standard deviation, t-statistic and positive share of a series (NaN left out)."""
    v = _clean(values)
    if v.size == 0:
        return {"mean": None, "std": None, "t_stat": None, "positive_share": None, "n": 0}
    sd = float(np.std(v, ddof=1)) if v.size > 1 else math.nan
    t = float(np.mean(v)) / sd * math.sqrt(v.size) if sd and math.isfinite(sd) else math.nan
    return {
        "mean": _finite_or_none(float(np.mean(v))),
        "std": _finite_or_none(sd),
        "t_stat": _finite_or_none(t),
        "positive_share": float(np.mean(v > 0)),
        "n": int(v.size),
    }


def value_at_risk(returns: Sequence[float] | np.ndarray, level: float = 0.95) -> float:
    """Historical one-session value at risk: the ``1 - level`` quantile of the returns.

    As empyrical's ``value_at_risk(returns, cutoff=1 - level)``: a return (negative
    for a loss), numpy's linear interpolation between order statistics; NaN without
    returns. ``-0.02`` at 95 % means one session in twenty lost 2 % or more.
    """
    r = _clean(returns)
    if r.size == 0:
        return math.nan
    return float(np.percentile(r, 100.0 * (1.0 - level)))


def conditional_value_at_risk(returns: Sequence[float] | np.ndarray, level: float = 0.95) -> float:
    """Expected shortfall: mean of the returns at or below :func:`value_at_risk` (a return)."""
    r = _clean(returns)
    if r.size == 0:
        return math.nan
    return float(np.mean(r[r <= value_at_risk(r, level)]))


def rolling_sharpe(returns: pd.Series, window: int, periods_per_year: int = 252) -> pd.Series:
    """:func:`sharpe_ratio` over each trailing window of ``window`` returns (empyrical's
    ``roll_sharpe_ratio``): rolling mean / rolling standard deviation (``ddof=1``) x
    ``sqrt(periods_per_year)``; NaN until the window is full and where the deviation is 0
    (below 1e-12: a constant window up to float rounding).

    Parameters
    ----------
    returns : Series of shape (n_periods,), indexed by session
        Simple returns, fractions.
    window : int
        Returns per window (>= 2), e.g. 63 sessions (a quarter).
    """
    if window < 2:
        raise ValueError(f"window must be >= 2, got {window}")
    r = returns.astype(float)
    sd = r.rolling(window, min_periods=window).std(ddof=1)
    mean = r.rolling(window, min_periods=window).mean()
    return (mean / sd.where(sd > 1e-12)) * math.sqrt(periods_per_year)


def rolling_volatility(returns: pd.Series, window: int, periods_per_year: int = 252) -> pd.Series:
    """:func:`annualised_volatility` over each trailing window of ``window`` returns:
    rolling standard deviation (``ddof=1``) x ``sqrt(periods_per_year)``, NaN until full."""
    if window < 2:
        raise ValueError(f"window must be >= 2, got {window}")
    r = returns.astype(float)
    return r.rolling(window, min_periods=window).std(ddof=1) * math.sqrt(periods_per_year)


def monthly_returns(returns: pd.Series) -> pd.DataFrame:
    """Compounded returns per calendar month and year (empyrical's ``aggregate_returns``).

    Parameters
    ----------
    returns : Series indexed by session (date or timestamp)
        Simple daily returns, fractions.

    Returns
    -------
    DataFrame
        One row per year (ascending), columns ``1`` .. ``12`` (the months:
        ``prod(1 + r) - 1`` over the month's sessions, NaN for a month without a
        return) and ``year`` (the same over the year's sessions).
    """
    months = list(range(1, 13))
    if returns.empty:
        return pd.DataFrame(columns=[*months, "year"], dtype=float)
    index = pd.DatetimeIndex(pd.to_datetime(returns.index))
    growth = pd.Series(returns.to_numpy(dtype=float) + 1.0, index=index)
    by_month = growth.groupby([index.year, index.month]).prod() - 1.0
    table = by_month.unstack().reindex(columns=months)
    table["year"] = growth.groupby(index.year).prod() - 1.0
    table.index.name = "year"
    table.columns.name = None
    return table


DRAWDOWN_COLUMNS = ("peak", "trough", "recovery", "depth", "sessions", "sessions_to_trough")
"""Columns of :func:`drawdown_periods`."""


def drawdown_periods(equity: pd.Series, top: int = 5) -> pd.DataFrame:
    """The ``top`` deepest drawdowns of an equity curve (pyfolio's ``gen_drawdown_table``).

    A drawdown starts at a high (``peak``: the last session at the running
    maximum before the equity falls below it), reaches its lowest equity
    (``trough``) and ends at ``recovery``, the first session back at or above
    the peak's equity (None when the curve ends below it: not recovered). The
    periods do not overlap, so the deepest one's depth is :func:`max_drawdown`.

    Parameters
    ----------
    equity : Series of shape (n_sessions,), indexed by session
        Equity at each close, USD (> 0).
    top : int
        How many periods, deepest first.

    Returns
    -------
    DataFrame
        Columns :data:`DRAWDOWN_COLUMNS`: ``peak``, ``trough``, ``recovery``
        (index labels of ``equity``), ``depth`` (``1 - trough / peak``, a
        positive fraction), ``sessions`` (sessions from the peak to the
        recovery, or to the last session when not recovered) and
        ``sessions_to_trough``; deepest first (ties: earliest first).
    """
    e = equity.to_numpy(dtype=float)
    labels = list(equity.index)
    rows: list[tuple] = []
    high, peak, start = -math.inf, 0, None
    for i, value in enumerate(e):
        if value >= high:
            if start is not None:  # back at the peak: the period ends here
                rows.append(_period(e, labels, peak, i, recovered=True))
                start = None
            high, peak = value, i
        elif start is None:
            start = i
    if start is not None:
        rows.append(_period(e, labels, peak, len(e) - 1, recovered=False))
    frame = pd.DataFrame(rows, columns=list(DRAWDOWN_COLUMNS))
    order = sorted(range(len(rows)), key=lambda k: (-rows[k][3], k))[:top]
    return frame.iloc[order].reset_index(drop=True)


def _period(e: np.ndarray, labels: list, peak: int, end: int, *, recovered: bool) -> tuple:
    """One row of :func:`drawdown_periods`: from ``peak`` to ``end`` (its recovery or the last)."""
    trough = peak + int(np.argmin(e[peak:end + 1]))
    return (labels[peak], labels[trough], labels[end] if recovered else None,
            float(1.0 - e[trough] / e[peak]), end - peak, trough - peak)
