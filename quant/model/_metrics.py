"""Cross-sectional quality of scores against realised forward returns.

Every statistic is computed per session across names, then summarised over
sessions, so a model is judged on ranking names against each other on the
same day (what a long-short portfolio trades), not on predicting the market.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "IC_HORIZONS",
    "daily_metrics",
    "ic_decay",
    "open_return_columns",
    "summarise_metrics",
    "score_metrics",
    "tradeable_daily_metrics",
]

IC_HORIZONS: tuple[int, ...] = (1, 5, 10, 20)
"""Horizons (sessions) of the tradeable returns a model's scores are evaluated on."""

_MIN_NAMES = 5
"""Sessions with fewer scored names than this are left out of the statistics."""


def _per_date_corr(dates: np.ndarray, x: np.ndarray, y: np.ndarray) -> pd.Series:
    frame = pd.DataFrame({"d": dates, "x": x, "y": y})
    grouped = frame.groupby("d", sort=True)
    frame["xc"] = frame["x"] - grouped["x"].transform("mean")
    frame["yc"] = frame["y"] - grouped["y"].transform("mean")
    frame["xy"] = frame["xc"] * frame["yc"]
    frame["xx"] = frame["xc"] ** 2
    frame["yy"] = frame["yc"] ** 2
    sums = frame.groupby("d", sort=True)[["xy", "xx", "yy"]].sum()
    denom = np.sqrt(sums["xx"] * sums["yy"])
    return (sums["xy"] / denom.where(denom > 0)).astype(float)


def daily_metrics(
    session_dates: Sequence | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    forward_returns: Sequence[float] | np.ndarray,
) -> pd.DataFrame:
    """Per-session IC, rank IC, hit rate and top-minus-bottom quintile spread.

    Parameters
    ----------
    session_dates : array of shape (n_rows,)
        Session of each (symbol, session) row.
    scores : array of shape (n_rows,)
        Model scores; higher means a higher expected forward return.
    forward_returns : array of shape (n_rows,)
        Realised forward total returns over the label horizon, fractions.

    Returns
    -------
    DataFrame indexed by session
        ``ic`` (Pearson), ``rank_ic`` (Spearman), ``hit_rate`` (share of
        names whose score and return are on the same side of their
        session's median), ``quintile_spread`` (mean forward return of the
        top score quintile minus the bottom one, fraction over the
        horizon) and ``n_names``.
    """
    frame = pd.DataFrame(
        {
            "d": np.asarray(session_dates),
            "s": np.asarray(scores, dtype=float),
            "r": np.asarray(forward_returns, dtype=float),
        }
    )
    frame = frame[np.isfinite(frame["s"]) & np.isfinite(frame["r"])]
    counts = frame.groupby("d", sort=True).size()
    frame = frame[frame["d"].map(counts) >= _MIN_NAMES]
    if frame.empty:
        return pd.DataFrame(columns=["ic", "rank_ic", "hit_rate", "quintile_spread", "n_names"])
    grouped = frame.groupby("d", sort=True)
    frame["sr"] = grouped["s"].rank(method="average")
    frame["rr"] = grouped["r"].rank(method="average")
    d = frame["d"].to_numpy()
    ic = _per_date_corr(d, frame["s"].to_numpy(), frame["r"].to_numpy())
    rank_ic = _per_date_corr(d, frame["sr"].to_numpy(), frame["rr"].to_numpy())
    s_side = np.sign(frame["s"] - grouped["s"].transform("median"))
    r_side = np.sign(frame["r"] - grouped["r"].transform("median"))
    frame["hit"] = ((s_side * r_side) > 0).astype(float)
    frame["hit"] = frame["hit"].where((s_side != 0) & (r_side != 0))
    hit_rate = frame.groupby("d", sort=True)["hit"].mean()
    pct = frame["sr"] / frame["d"].map(counts)
    top = frame["r"].where(pct > 0.8)
    bottom = frame["r"].where(pct <= 0.2)
    spread = top.groupby(frame["d"]).mean() - bottom.groupby(frame["d"]).mean()
    out = pd.DataFrame(
        {
            "ic": ic,
            "rank_ic": rank_ic,
            "hit_rate": hit_rate,
            "quintile_spread": spread,
            "n_names": grouped.size(),
        }
    )
    out.index.name = "session_date"
    return out


def _clean(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def summarise_metrics(daily: pd.DataFrame) -> dict[str, float | int | None]:
    """Means over sessions of :func:`daily_metrics`, with the rank-IC information ratio.

    Returns
    -------
    dict
        ``ic``, ``rank_ic``, ``icir`` (mean / standard deviation of the daily
        rank IC, not annualised), ``hit_rate``, ``quintile_spread``,
        ``sessions`` and ``names_per_session``; ``None`` where undefined.
    """
    if daily.empty:
        return {
            "ic": None,
            "rank_ic": None,
            "icir": None,
            "hit_rate": None,
            "quintile_spread": None,
            "sessions": 0,
            "names_per_session": None,
        }
    rank_ic = daily["rank_ic"].dropna()
    sd = float(rank_ic.std(ddof=1)) if len(rank_ic) > 1 else float("nan")
    return {
        "ic": _clean(float(daily["ic"].mean())),
        "rank_ic": _clean(float(rank_ic.mean())),
        "icir": _clean(float(rank_ic.mean()) / sd if sd > 0 else float("nan")),
        "hit_rate": _clean(float(daily["hit_rate"].mean())),
        "quintile_spread": _clean(float(daily["quintile_spread"].mean())),
        "sessions": int(len(daily)),
        "names_per_session": _clean(float(daily["n_names"].mean())),
    }


def score_metrics(
    session_dates: Sequence | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    forward_returns: Sequence[float] | np.ndarray,
) -> dict[str, float | int | None]:
    """:func:`summarise_metrics` of :func:`daily_metrics` in one call."""
    return summarise_metrics(daily_metrics(session_dates, scores, forward_returns))


def open_return_columns(horizon_sessions: int) -> tuple[str, str]:
    """Names of the tradeable (next open to open) return and its end-date column in marts.labels."""
    return f"open_return_{horizon_sessions}d", f"open_label_end_date_{horizon_sessions}d"


def tradeable_daily_metrics(
    scores: pd.DataFrame, returns: pd.DataFrame, horizon_sessions: int = 1
) -> pd.DataFrame:
    """:func:`daily_metrics` of session D's scores against the return the book can earn on them.

    The book trades D's scores at the next session's open, so the return is
    ``open_return_{h}d`` of marts.labels: from D+1's open to the open ``h``
    sessions later, not D's close to D+1's close.

    Parameters
    ----------
    scores : DataFrame
        ``session_date``, ``symbol``, ``score``.
    returns : DataFrame
        ``session_date``, ``symbol`` and ``open_return_{h}d`` (fractions;
        NaN where not known).
    horizon_sessions : int
        h.
    """
    column, _ = open_return_columns(horizon_sessions)
    left = scores[["session_date", "symbol", "score"]].assign(
        session_date=pd.to_datetime(scores["session_date"]), symbol=scores["symbol"].astype(str)
    )
    right = returns[["session_date", "symbol", column]].assign(
        session_date=pd.to_datetime(returns["session_date"]), symbol=returns["symbol"].astype(str)
    )
    joined = left.merge(right, on=["session_date", "symbol"], how="inner")
    return daily_metrics(
        joined["session_date"].to_numpy(),
        joined["score"].to_numpy(dtype=float),
        joined[column].to_numpy(dtype=float),
    )


def ic_decay(
    scores: pd.DataFrame, returns: pd.DataFrame, horizons: Sequence[int] = IC_HORIZONS
) -> dict[str, dict[str, float | int | None]]:
    """IC, rank IC and ICIR of the scores against the tradeable return of each horizon.

    How fast the rank IC falls from 1 to 20 sessions says how long a score
    keeps its value: a signal that is gone after one session must be traded
    daily (and pays the costs), one that holds over 20 sessions can be
    traded slowly. Horizons whose return column is missing are left out.

    Returns
    -------
    dict
        ``"1"``, ``"5"``, ... to ``ic``, ``rank_ic`` (means over sessions),
        ``icir`` (mean / standard deviation of the daily rank IC, not
        annualised; the daily ICs of overlapping multi-session returns are
        correlated, so compare ICIRs of one horizon with each other) and
        ``sessions``.
    """
    out: dict[str, dict[str, float | int | None]] = {}
    for h in horizons:
        if open_return_columns(h)[0] not in returns.columns:
            continue
        summary = summarise_metrics(tradeable_daily_metrics(scores, returns, h))
        out[str(h)] = {k: summary[k] for k in ("ic", "rank_ic", "icir", "sessions")}
    return out
