"""Conviction: the information coefficient the expected returns are scaled by.

The expected return of a name is ``IC x sigma x z`` (Grinold's alpha, see
:func:`quant.portfolio.expected_returns_from_scores`). With
``PortfolioSettings.ic_source = "realised"`` the IC is the model's own recent
record: the mean daily rank IC of its scores against the forward returns that
followed them, over the last ``ic_window_sessions`` prediction sessions whose
outcome is known at D, less ``ic_confidence`` standard errors, floored at 0. A
model without skill gets no conviction: its expected returns are zero.

No realised IC is recorded anywhere before this stage needs it (the model
registry keeps only the walk-forward validation IC, ``ops.models.validation_rank_ic``),
so it is computed here, point in time, from ``ops.predictions`` and the returns
relation up to D. With fewer than ``ic_min_sessions`` sessions of outcomes (a
new model history) the fallback is explicit, logged and recorded in the
portfolio diagnostics: the validation IC of the model that scored D, else
``score_ic``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from quant.config import PortfolioSettings

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

__all__ = [
    "Conviction",
    "conviction_from_daily_ic",
    "load_predictions",
    "load_validation_ic",
    "realised_rank_ic",
]

log = logging.getLogger(__name__)

_MIN_NAMES = 5
"""Sessions with fewer names with both a score and an outcome are left out."""


@dataclass(frozen=True, slots=True)
class Conviction:
    """The IC a day's expected returns are scaled by, and where it came from.

    Attributes
    ----------
    ic : float
        The IC used (>= 0).
    source : str
        ``realised``, ``validation`` (fallback) or ``configured`` (``score_ic``).
    realised_ic : float or None
        Mean daily rank IC over the window, before the shrinkage.
    std_error : float or None
        Its standard error (the daily ICs' standard deviation over the square root
        of the number of non-overlapping horizons in the window).
    sessions : int
        Sessions of the window with a known outcome.
    note : str or None
        Why a fallback was used.
    """

    ic: float
    source: str
    realised_ic: float | None = None
    std_error: float | None = None
    sessions: int = 0
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ic": self.ic,
            "source": self.source,
            "realised_ic": self.realised_ic,
            "std_error": self.std_error,
            "sessions": self.sessions,
            "note": self.note,
        }


def realised_rank_ic(
    predictions: pd.DataFrame, returns: pd.DataFrame, horizon_sessions: int, window: int
) -> pd.Series:
    """Daily rank IC of past scores against the forward returns that followed them.

    A score of session t is matched with the compounded return over the
    ``horizon_sessions`` sessions after t; only sessions whose horizon ends at or
    before the last row of ``returns`` count (the outcome must be known).

    Parameters
    ----------
    predictions : DataFrame with columns ``session_date``, ``symbol``, ``score``
    returns : DataFrame of shape (n_sessions, n_symbols), daily total returns indexed
        by session (ascending), up to D
    horizon_sessions : int
    window : int
        The latest sessions with a known outcome that count.

    Returns
    -------
    Series indexed by session, the Spearman correlation across names
    """
    if predictions.empty or len(returns) <= horizon_sessions:
        return pd.Series(dtype=float)
    index = pd.DatetimeIndex(returns.index).as_unit("ns")
    growth = np.log1p(returns.astype(float))
    # forward log return over t+1..t+h, at row t; NaN when a return in the span is missing
    forward = growth[::-1].rolling(horizon_sessions, min_periods=horizon_sessions).sum()[::-1]
    forward = np.expm1(forward.shift(-1))
    forward.index = index
    known = index[: len(index) - horizon_sessions][-window:]
    scores = predictions.pivot_table(index="session_date", columns="symbol", values="score")
    scores.index = pd.DatetimeIndex(pd.to_datetime(scores.index)).as_unit("ns")
    days = scores.index.intersection(known)
    if days.empty:
        return pd.Series(dtype=float)
    # every session at once: Spearman = Pearson of the average ranks, over the names
    # with both a score and an outcome; a session with fewer than _MIN_NAMES such names,
    # or with every score or every outcome equal, has no IC
    s = scores.loc[days]
    r = forward.loc[days].reindex(columns=s.columns)
    ok = s.notna() & r.notna()
    enough = (ok.sum(axis=1) >= _MIN_NAMES).to_numpy()
    s, r, ok, days = s[enough], r[enough], ok[enough], days[enough]
    ranks_s = s.where(ok).rank(axis=1).to_numpy()
    ranks_r = r.where(ok).rank(axis=1).to_numpy()
    ds = ranks_s - np.nanmean(ranks_s, axis=1, keepdims=True)
    dr = ranks_r - np.nanmean(ranks_r, axis=1, keepdims=True)
    ss, rr = np.nansum(ds * ds, axis=1), np.nansum(dr * dr, axis=1)
    valid = (ss > 0) & (rr > 0)
    ic = np.nansum(ds * dr, axis=1)[valid] / np.sqrt(ss[valid] * rr[valid])
    return pd.Series(ic, index=days[valid], dtype=float).sort_index()


def conviction_from_daily_ic(
    daily_ic: pd.Series,
    settings: PortfolioSettings,
    horizon_sessions: int,
    validation_ic: float | None = None,
) -> Conviction:
    """The IC to use from the daily realised ICs, or the fallback when there are too few.

    ``ic = max(0, mean - ic_confidence x std_error)``, where the standard error
    counts the window's non-overlapping horizons (``sessions / horizon``): daily ICs
    of a multi-session label overlap and are not independent.
    """
    if settings.ic_source == "configured":
        return Conviction(ic=settings.score_ic, source="configured")
    values = daily_ic.dropna()
    n = len(values)
    if n < settings.ic_min_sessions:
        note = (
            f"{n} sessions of realised IC, fewer than ic_min_sessions "
            f"({settings.ic_min_sessions})"
        )
        if validation_ic is not None and math.isfinite(validation_ic):
            return Conviction(
                ic=max(0.0, float(validation_ic)),
                source="validation",
                sessions=n,
                note=f"{note}: the model's validation rank IC is used",
            )
        return Conviction(
            ic=settings.score_ic,
            source="configured",
            sessions=n,
            note=f"{note} and no validation IC: score_ic is used",
        )
    mean = float(values.mean())
    independent = max(n / horizon_sessions, 1.0)
    std_error = float(values.std(ddof=1)) / math.sqrt(independent)
    if not math.isfinite(std_error):
        std_error = 0.0
    ic = max(0.0, mean - settings.ic_confidence * std_error)
    return Conviction(ic=ic, source="realised", realised_ic=mean, std_error=std_error, sessions=n)


def load_predictions(conn: PgConnection, first: date, before: date) -> pd.DataFrame:
    """``ops.predictions`` of the sessions ``first`` .. the one before ``before``."""
    with conn.cursor() as cur:
        cur.execute(
            "select session_date, symbol, score from ops.predictions "
            "where session_date >= %s and session_date < %s",
            (first, before),
        )
        rows = cur.fetchall()
    return pd.DataFrame(
        [(d, s, float(v)) for d, s, v in rows], columns=["session_date", "symbol", "score"]
    )


def load_validation_ic(conn: PgConnection, day: date) -> float | None:
    """Walk-forward validation rank IC of the model that scored D (None when unknown)."""
    with conn.cursor() as cur:
        cur.execute(
            """
            select m.validation_rank_ic from ops.models m
            where m.model_id = (
                select p.model_id from ops.predictions p where p.session_date = %s
                order by p.symbol limit 1
            )
            """,
            (day,),
        )
        row = cur.fetchone()
    return None if row is None or row[0] is None else float(row[0])


def log_fallback(day: date, conviction: Conviction) -> None:
    """Log a conviction that is not the realised IC (when the settings asked for it)."""
    if conviction.note:
        log.warning("portfolio %s: %s (IC %.4f)", day, conviction.note, conviction.ic)
