"""Champion or challenger: both judged on the same recent sessions, out of sample, on tradeable returns.

A retrain at D produces a challenger. Its validation record is no basis to
compare it with the champion's, which was measured on other, older sessions
(a lucky early model would stay champion for ever). Instead both are scored
on the *selection window*: the last ``selection_sessions`` sessions that

- lie after the champion's training (the champion never saw them),
- lie in the challenger's last walk-forward validation fold (its recipe,
  fitted without them, scored them: :attr:`TrainedModel.recent_scores`),
- have their tradeable return known at D's close (``open_return_{h}d`` of
  marts.labels, from the next session's open, ``h`` the
  ``selection_horizon_sessions``).

The challenger replaces the champion when its mean daily rank IC over the
window beats the champion's by ``promotion_margin``. A champion younger than
the window (fewer such sessions) is kept: it has no record to lose on yet.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from quant.config import Settings
from quant.db import quote_identifier
from quant.exceptions import ModelError
from quant.model._marts import LABELS, feature_columns, load_features
from quant.model._metrics import IC_HORIZONS, ic_decay, open_return_columns, tradeable_daily_metrics
from quant.model._registry import ModelRecord, load_booster
from quant.model._train import TrainedModel

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

__all__ = [
    "PROMOTION_CODES",
    "decide_promotion",
    "drift_retrain_deferred",
    "load_open_returns",
    "with_tradeable_metrics",
]

PROMOTION_CODES: tuple[str, ...] = (
    "no_champion",
    "better_on_window",
    "champion_cannot_score",
    "not_better_on_window",
    "window_too_short",
    "same_model",
)
"""Why a challenger was (first three) or was not promoted."""


def load_open_returns(
    conn: PgConnection,
    start: date,
    end: date,
    as_of: date,
    *,
    schema: str = "marts",
    horizons: tuple[int, ...] = IC_HORIZONS,
) -> pd.DataFrame:
    """Tradeable returns of sessions ``start..end`` as known at the close of ``as_of``.

    Returns
    -------
    DataFrame
        ``session_date`` (datetime64), ``symbol`` and ``open_return_{h}d`` per
        horizon (fractions), NaN where the horizon's last open is after
        ``as_of``.

    Raises
    ------
    ModelError
        marts.labels has no tradeable return column (rebuild the dbt marts).
    """
    with conn.cursor() as cur:
        cur.execute(
            "select column_name from information_schema.columns "
            "where table_schema = %s and table_name = %s",
            (schema, LABELS),
        )
        present = {r[0] for r in cur.fetchall()}
        known = [h for h in horizons if set(open_return_columns(h)) <= present]
        if not known:
            raise ModelError(
                f"{schema}.{LABELS} has no open_return_<h>d column: rebuild the dbt marts"
            )
        parts = []
        for h in known:
            ret, end_col = open_return_columns(h)
            parts.append(
                f"case when {quote_identifier(end_col)} <= %(as_of)s "
                f"then {quote_identifier(ret)} end as {quote_identifier(ret)}"
            )
        cur.execute(
            f"select session_date, symbol, {', '.join(parts)} "
            f"from {quote_identifier(schema)}.{quote_identifier(LABELS)} "
            "where session_date between %(start)s and %(end)s order by session_date, symbol",
            {"start": start, "end": end, "as_of": as_of},
        )
        rows = cur.fetchall()
    columns = ["session_date", "symbol", *(open_return_columns(h)[0] for h in known)]
    frame = pd.DataFrame(rows, columns=columns)
    frame["session_date"] = pd.to_datetime(frame["session_date"])
    for name in columns[2:]:
        frame[name] = frame[name].astype(float)
    return frame


def with_tradeable_metrics(
    conn: PgConnection, session: date, model: TrainedModel, settings: Settings
) -> TrainedModel:
    """``model`` with ``metrics["tradeable"]``: its last validation fold against tradeable returns.

    The validation metrics use the training label (close to close); this is
    the same out-of-sample scores of the last fold against the returns the
    book earns (next open to open) known at D's close: ``ic_decay`` at 1, 5,
    10 and 20 sessions (each with ``ic``, ``rank_ic``, ``icir``,
    ``sessions``), ``icir`` (1 session), and the fold's first and last session.
    """
    recent = model.recent_scores
    if recent is None or recent.empty:
        return model
    days = pd.to_datetime(recent["session_date"])
    first, last = days.min().date(), days.max().date()
    returns = load_open_returns(conn, first, last, session, schema=settings.model.marts_schema)
    decay = ic_decay(recent, returns)
    tradeable = {
        "start": first.isoformat(),
        "end": last.isoformat(),
        "icir": decay.get("1", {}).get("icir"),
        "ic_decay": decay,
    }
    return dataclasses.replace(model, metrics={**model.metrics, "tradeable": tradeable})


def drift_retrain_deferred(
    session: date, champion: ModelRecord | None, reason: str | None, settings: Settings
) -> str | None:
    """``"drift_deferred"`` when a drift retrain at D could not be compared with the champion yet.

    A model fitted at D can only replace a champion that has ``selection_sessions``
    sessions after its training, before the last labelled session (the
    training horizon before D) and with a known tradeable return (the
    selection horizon plus one before D). Until then the fit would be thrown
    away (``window_too_short``), so a drift retrain waits; the drift stays
    measured against the latest fit and triggers again. Forced, first and
    scheduled retrains are not deferred.
    """
    if reason != "drift" or champion is None:
        return None
    from quant.calendar import get_calendar

    cfg = settings.model
    since = get_calendar(settings.exchange).sessions(champion.trained_through, session)
    after = sum(1 for day in since if day > champion.trained_through)
    usable = after - max(cfg.horizon_sessions, cfg.selection_horizon_sessions + 1)
    return "drift_deferred" if usable < cfg.selection_sessions else None


def _champion_scores(
    conn: PgConnection, champion: ModelRecord, start: date, end: date, settings: Settings
) -> pd.DataFrame | None:
    """The champion's scores of the tradable names over ``start..end``; None if it cannot score."""
    schema = settings.model.marts_schema
    if not set(champion.features) <= set(feature_columns(conn, schema)):
        return None
    frame = load_features(conn, start, end, list(champion.features), schema=schema)
    x = frame[list(champion.features)].to_numpy(dtype=np.float64)
    complete = ~np.isnan(x).any(axis=1)
    booster = load_booster(settings.models_dir / champion.artifact_path, champion.artifact_checksum)
    scores = booster.predict(x[complete]) if complete.any() else np.empty(0)
    return pd.DataFrame(
        {
            "session_date": pd.to_datetime(frame["session_date"].to_numpy()[complete]),
            "symbol": frame["symbol"].astype(str).to_numpy()[complete],
            "score": scores,
        }
    )


def _record(scores: pd.DataFrame, returns: pd.DataFrame, horizon: int) -> dict[str, Any]:
    daily = tradeable_daily_metrics(scores, returns, horizon)
    rank_ic = daily["rank_ic"].dropna()
    sd = float(rank_ic.std(ddof=1)) if len(rank_ic) > 1 else float("nan")
    mean = float(rank_ic.mean()) if len(rank_ic) else float("nan")
    return {
        "rank_ic": mean if np.isfinite(mean) else None,
        "icir": mean / sd if np.isfinite(mean) and sd > 0 else None,
        "ic_decay": ic_decay(scores, returns),
    }


def decide_promotion(
    conn: PgConnection,
    session: date,
    champion: ModelRecord | None,
    model: TrainedModel,
    model_id: int,
    settings: Settings,
) -> tuple[bool, str, str, dict[str, Any] | None]:
    """Whether the model fitted at D replaces the champion, compared on the selection window.

    Returns
    -------
    (promote, code, why, window)
        ``code`` one of :data:`PROMOTION_CODES`; ``why`` a sentence with the
        figures; ``window`` (None without a comparison) the window's first and
        last session, its length, the horizon, and per model (``champion``,
        ``challenger``) the mean daily rank IC, ICIR and IC decay over it.
    """
    cfg = settings.model
    if champion is None:
        return True, "no_champion", "no champion", None
    if champion.model_id == model_id:
        return False, "same_model", "the champion is this model", None
    recent = model.recent_scores
    horizon, k = cfg.selection_horizon_sessions, cfg.selection_sessions
    if recent is None or recent.empty:
        return False, "window_too_short", "the new model has no out-of-sample scores", None
    recent = recent.assign(session_date=pd.to_datetime(recent["session_date"]))
    after = recent[recent["session_date"] > pd.Timestamp(champion.trained_through)]
    candidates = np.unique(after["session_date"].to_numpy())
    returns = pd.DataFrame()
    if candidates.size:
        first = pd.Timestamp(candidates[0]).date()
        returns = load_open_returns(conn, first, session, session, schema=cfg.marts_schema)
        column = open_return_columns(horizon)[0]
        if column not in returns.columns:
            raise ModelError(
                f"{cfg.marts_schema}.{LABELS} has no {column}: rebuild the dbt marts "
                "or choose another selection_horizon_sessions"
            )
        known = returns.loc[returns[column].notna(), "session_date"].unique()
        candidates = candidates[np.isin(candidates, known)]
    if candidates.size < k:
        return (
            False,
            "window_too_short",
            (
                f"only {candidates.size} session(s) scored out of sample by both models with a known "
                f"{horizon}-session tradeable return; the window needs {k}"
            ),
            None,
        )
    window = candidates[-k:]
    start, end = pd.Timestamp(window[0]).date(), pd.Timestamp(window[-1]).date()
    challenger_scores = after[after["session_date"].isin(window)]
    champion_scores = _champion_scores(conn, champion, start, end, settings)
    if champion_scores is None:
        return True, "champion_cannot_score", "the champion's inputs are gone from the marts", None
    # the same (session, name) pairs for both: the comparison is of the scores only
    pairs = challenger_scores[["session_date", "symbol"]].merge(
        champion_scores[["session_date", "symbol"]], on=["session_date", "symbol"]
    )
    challenger_scores = challenger_scores.merge(pairs, on=["session_date", "symbol"])
    champion_scores = champion_scores.merge(pairs, on=["session_date", "symbol"])
    returns = returns[returns["session_date"].isin(window)]
    record = {
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "sessions": int(k),
        "horizon_sessions": horizon,
        "champion": _record(champion_scores, returns, horizon),
        "challenger": _record(challenger_scores, returns, horizon),
    }
    new_ic, old_ic = record["challenger"]["rank_ic"], record["champion"]["rank_ic"]
    span = f"{start}..{end}"
    if new_ic is None:
        return False, "not_better_on_window", f"no rank IC for the new model on {span}", record
    if old_ic is None or new_ic > old_ic + cfg.promotion_margin:
        old = "none" if old_ic is None else f"{old_ic:.4f}"
        why = (
            f"rank IC {new_ic:.4f} > champion {old} + margin {cfg.promotion_margin} "
            f"on {span} ({horizon}-session tradeable return)"
        )
        return True, "better_on_window", why, record
    why = (
        f"rank IC {new_ic:.4f} <= champion {old_ic:.4f} + margin {cfg.promotion_margin} "
        f"on {span} ({horizon}-session tradeable return)"
    )
    return False, "not_better_on_window", why, record
