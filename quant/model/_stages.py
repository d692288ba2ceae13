"""The pipeline's model stages: ``retrain_model`` (when due) and ``predict``, for session D.

Both read only what was knowable at D's close and are idempotent for D: a
rerun decides from the registry as it was before D, reuses an identical
model, and replaces D's promotion, decision and prediction rows.
"""

from __future__ import annotations

import json
import math
import time
import weakref
from collections import OrderedDict
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from quant.calendar import get_calendar
from quant.config import ModelSettings, Settings
from quant.exceptions import ModelError, NoChampionError, TrainingDataError
from quant.model._drift import DriftReference, calibrated_drift
from quant.model._marts import (
    cached_feature_sessions,
    cached_feature_source,
    feature_columns,
    history_start,
    load_features,
    load_labels,
    load_universe,
)
from quant.model._registry import (
    ModelRecord,
    champion_as_of,
    clear_promotions,
    latest_model_before,
    load_booster,
    record_promotion,
    refresh_statuses,
    register_model,
    save_artifact,
)
from quant.model._score import score_cross_section
from quant.model._selection import (
    decide_promotion,
    drift_retrain_deferred,
    with_tradeable_metrics,
)
from quant.model._train import TrainedModel, train_model

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

    from quant.db import RelationCache
    from quant.pipeline import RunContext

__all__ = ["RETRAIN_REASONS", "predict", "retrain_due", "retrain_model", "schedule_due"]

RETRAIN_REASONS: tuple[str, ...] = ("forced", "no_champion", "scheduled", "drift")
"""Why a retrain happens, in the order the policy checks them."""

_SHOWN_NAMES = 50
"""Most skipped symbols listed by name in a stage summary."""


def schedule_due(session: date, schedule: str, exchange: str = "XNYS") -> bool:
    """Whether the calendar retrain schedule falls on ``session``.

    ``weekly`` is the first session of an ISO week, ``monthly`` the first of
    a calendar month, ``daily`` every session, ``never`` none.
    """
    if schedule == "daily":
        return True
    if schedule == "never":
        return False
    previous = get_calendar(exchange).previous_session(session)
    if schedule == "weekly":
        return previous.isocalendar()[:2] != session.isocalendar()[:2]
    if schedule == "monthly":
        return (previous.year, previous.month) != (session.year, session.month)
    raise ValueError(f"unknown retrain schedule {schedule!r}")


def retrain_due(
    *,
    force: bool,
    has_champion: bool,
    scheduled: bool,
    drift_psi: float | None,
    drift_threshold: float,
) -> str | None:
    """The first reason of :data:`RETRAIN_REASONS` that applies, or ``None`` (skip)."""
    if force:
        return "forced"
    if not has_champion:
        return "no_champion"
    if scheduled:
        return "scheduled"
    if drift_psi is not None and drift_psi > drift_threshold:
        return "drift"
    return None


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    return value if math.isfinite(value) else float("inf")


def _json_number(value: float | None) -> float | str | None:
    if value is None:
        return None
    return value if math.isfinite(value) else "inf"


_DRIFT_REFERENCES: OrderedDict[int, DriftReference] = OrderedDict()
"""Prepared reference distributions of recent champions, by model id."""

_DRIFT_REFERENCES_KEPT = 8


def _drift_reference(champion: ModelRecord) -> DriftReference:
    """The champion's reference distribution, prepared once per model."""
    prepared = _DRIFT_REFERENCES.get(champion.model_id)
    if prepared is None or prepared.reference != champion.reference:
        prepared = DriftReference(champion.reference)
        _DRIFT_REFERENCES[champion.model_id] = prepared
        while len(_DRIFT_REFERENCES) > _DRIFT_REFERENCES_KEPT:
            _DRIFT_REFERENCES.popitem(last=False)
    else:
        _DRIFT_REFERENCES.move_to_end(champion.model_id)
    return prepared


def _drift(
    conn: PgConnection,
    session: date,
    champion: ModelRecord,
    cfg: ModelSettings,
    cache: RelationCache | None,
) -> dict[str, float]:
    schema = cfg.marts_schema
    available = set(feature_columns(conn, schema, cache=cache))
    columns = [c for c in champion.features if c in available]
    start = history_start(conn, session, cfg.drift_window_sessions, schema, cache=cache)
    if start is None:
        return {name: math.inf for name in champion.reference}
    prepared = _drift_reference(champion)
    source = cached_feature_source(start, session, schema, cache=cache)
    if source is None:
        return prepared.drift(load_features(conn, start, session, columns, schema=schema))
    # cached marts do not change: each session's bin counts are computed once per champion
    memo = prepared.session_counts
    held = memo.get("source")
    if held is None or held[0]() is not source[0] or held[1]() is not source[1] or (
        held[2] != tuple(columns)
    ):
        memo.clear()
        memo["source"] = (weakref.ref(source[0]), weakref.ref(source[1]), tuple(columns))
    sessions = cached_feature_sessions(start, session, schema, cache=cache)
    window = [pd.Timestamp(d).date() for d in sessions]
    missing = [d for d in window if d not in memo]
    if missing:
        frame = load_features(conn, missing[0], missing[-1], columns, schema=schema, cache=cache)
        days = frame["session_date"].to_numpy()
        for day in window:
            if missing[0] <= day <= missing[-1]:
                at = np.datetime64(day)
                lo = np.searchsorted(days, at, side="left")
                hi = np.searchsorted(days, at, side="right")
                memo[day] = prepared.counts(frame.iloc[lo:hi])  # a day with no row counts zeros
    return prepared.drift_from_counts([memo[d] for d in window])


def _drift_since_last_fit(
    conn: PgConnection,
    session: date,
    champion: ModelRecord | None,
    cfg: ModelSettings,
    cache: RelationCache | None,
) -> tuple[ModelRecord | None, dict[str, float], dict[str, float]]:
    """Drift of D's inputs from the data of the latest fit before D: (that model, drift, raw PSI).

    The reference is the newest model registered before D, promoted or not:
    once a retrain has learnt from the shifted data, the shift is no reason
    to fit again the next session (a challenger that lost would otherwise be
    refitted every session while the champion's old data stays the
    reference). ``drift`` is the raw PSI, or beyond each feature's
    training-window variation (``drift_calibration``, :func:`calibrated_drift`).
    Empty without a champion (the retrain is due anyway).
    """
    if champion is None:
        return None, {}, {}
    reference = latest_model_before(conn, session) or champion
    raw = _drift(conn, session, reference, cfg, cache)
    if cfg.drift_calibration == "none":
        return reference, raw, raw
    return reference, calibrated_drift(raw, reference.reference), raw


def _drift_statistic(drift: dict[str, float], statistic: str) -> float | None:
    if not drift:
        return None
    values = list(drift.values())
    return max(values) if statistic == "max" else float(sum(values) / len(values))


def _record_decision(conn: PgConnection, session: date, run_id: str | None, summary: dict) -> None:
    with conn.cursor() as cur:
        cur.execute(
            """
            insert into ops.retrain_decisions (
                session_date, run_id, action, reason, model_id, champion_model_id,
                champion_changed, details, decided_at
            )
            values (%s, %s, %s, %s, %s, %s, %s, %s, now())
            on conflict (session_date) do update set
                run_id = excluded.run_id, action = excluded.action, reason = excluded.reason,
                model_id = excluded.model_id, champion_model_id = excluded.champion_model_id,
                champion_changed = excluded.champion_changed, details = excluded.details,
                decided_at = excluded.decided_at
            """,
            (
                session,
                run_id,
                summary["action"],
                summary["reason"],
                summary.get("model_id"),
                summary.get("champion_model_id"),
                summary["champion_changed"],
                json.dumps(summary, sort_keys=True, default=str),
            ),
        )


def retrain_model(run: RunContext, *, force: bool = False) -> dict[str, Any]:
    """Retrain the model for session D when the policy says so; otherwise record the skip.

    The policy (``settings.model``) retrains when forced, when no model was
    champion before D, on the calendar schedule, or when an input's PSI
    over the last ``drift_window_sessions`` sessions against the training
    data of the latest model fitted before D, beyond the variation that
    data showed between windows of its own (``drift_calibration``), exceeds
    ``drift_threshold``. A new model replaces the champion from D on only if
    its rank IC on the selection window (the latest sessions both scored out
    of sample, against the tradeable return; :mod:`quant.model._selection`)
    beats the champion's by ``promotion_margin`` (or there is no champion).

    When the run context holds models fitted ahead (:attr:`RunContext.models`, the
    backtest's trainer), a retrain at D registers the one given for D instead of
    fitting it: it must be exactly what :func:`fit_model` would give (None: fit here).

    Parameters
    ----------
    run : RunContext
        The run: its session is the logical date D; its run id is recorded with the decision.
    force : bool
        Retrain whatever the policy says (the DAG's ``force_retrain``).

    Returns
    -------
    dict
        JSON-serialisable: ``session``, ``action`` (``retrained`` /
        ``skipped``), ``reason``, ``model_id``, ``model_created``,
        ``champion_model_id``, ``champion_changed``, ``metrics``,
        ``drift_psi`` (largest or mean input drift, per ``drift_statistic``,
        as compared with the threshold; ``"inf"`` when an input vanished),
        ``drift_raw_psi`` (the same of the uncalibrated PSIs),
        ``drift_model_id`` (the model whose training data is the reference),
        ``drift_top`` (largest drifts by feature); after a retrain also
        ``promoted``, ``promotion_code`` (:data:`PROMOTION_CODES`),
        ``promotion`` (the reason in words) and ``selection`` (the window's
        figures of both models, or None).

    Raises
    ------
    TrainingDataError
        A retrain is due, there is no champion to keep, and the data known
        at D cannot train a model.
    """
    session, settings, run_id = run.session, run.settings, run.run_id
    cfg = settings.model
    get_calendar(settings.exchange).require_session(session)
    started = time.perf_counter()
    with run.transaction() as conn:
        champion = champion_as_of(conn, session, inclusive=False)
        drift_model, drift, raw_drift = _drift_since_last_fit(
            conn, session, champion, cfg, run.relations
        )
        drift_psi = _drift_statistic(drift, cfg.drift_statistic)
        reason = retrain_due(
            force=force,
            has_champion=champion is not None,
            scheduled=schedule_due(session, cfg.retrain_schedule, settings.exchange),
            drift_psi=drift_psi,
            drift_threshold=cfg.drift_threshold,
        )
        deferred = drift_retrain_deferred(session, champion, reason, settings)
        summary: dict[str, Any] = {
            "session": session.isoformat(),
            "action": "skipped",
            "reason": deferred or reason or "not_due",
            "model_id": None,
            "model_created": False,
            "champion_model_id": None if champion is None else champion.model_id,
            "previous_champion_model_id": None if champion is None else champion.model_id,
            "champion_changed": False,
            "metrics": None,
            "drift_psi": _json_number(_finite(drift_psi)),
            "drift_raw_psi": _json_number(_finite(_drift_statistic(raw_drift, cfg.drift_statistic))),
            "drift_threshold": cfg.drift_threshold,
            "drift_statistic": cfg.drift_statistic,
            "drift_calibration": cfg.drift_calibration,
            "drift_model_id": None if drift_model is None else drift_model.model_id,
            "drift_top": {k: _json_number(v) for k, v in list(drift.items())[:5]},
            "retrain_schedule": cfg.retrain_schedule,
        }
        clear_promotions(conn, session)
        if reason is not None and deferred is None:
            summary.update(_retrain(conn, run, champion, reason))
        refresh_statuses(conn)
        summary["seconds"] = round(time.perf_counter() - started, 3)
        _record_decision(conn, session, run_id, summary)
    return summary


def fit_model(
    conn: PgConnection,
    session: date,
    settings: Settings,
    *,
    cache: RelationCache | None = None,
) -> TrainedModel:
    """What a retrain at D trains: the training window's features and labels up to D, fitted.

    Raises
    ------
    TrainingDataError
        The marts cannot train a model at D.
    """
    cfg = settings.model
    schema = cfg.marts_schema
    columns = list(cfg.features) if cfg.features else feature_columns(conn, schema, cache=cache)
    lookback = cfg.train_window_sessions + cfg.horizon_sessions
    start = history_start(conn, session, lookback, schema, cache=cache)
    if start is None:
        raise TrainingDataError(f"{schema}.features has no row on or before {session}")
    features = load_features(conn, start, session, columns, schema=schema, cache=cache)
    labels = load_labels(conn, start, session, cfg.horizon_sessions, schema, cache=cache)
    return train_model(features, labels, as_of=session, settings=cfg)


def _retrain(
    conn: PgConnection, run: RunContext, champion: ModelRecord | None, reason: str
) -> dict[str, Any]:
    session, settings = run.session, run.settings
    try:
        model = None if run.models is None else run.models(session, settings)
        if model is None:
            model = fit_model(conn, session, settings, cache=run.relations)
    except TrainingDataError as exc:
        if champion is None:
            raise
        return {"action": "skipped", "reason": "insufficient_data", "error": str(exc)}
    model = with_tradeable_metrics(conn, session, model, settings)
    path = save_artifact(model, settings.models_dir)
    model_id, created = register_model(conn, model, path.name)
    out: dict[str, Any] = {
        "action": "retrained",
        "reason": reason,
        "model_id": model_id,
        "model_created": created,
        "metrics": model.metrics["validation"],
        "tradeable_metrics": model.metrics.get("tradeable"),
        "features": len(model.features),
        "dropped_features": list(model.dropped_features),
        "train_rows": model.train_rows,
        "train_sessions": model.train_sessions,
        "artifact_checksum": model.checksum,
    }
    promote, code, why, window = decide_promotion(
        conn, session, champion, model, model_id, settings
    )
    out["promoted"] = promote
    out["promotion_code"] = code
    out["selection"] = window
    out["promotion"] = why
    if promote and (champion is None or champion.model_id != model_id):
        record_promotion(
            conn, session, model_id, None if champion is None else champion.model_id, why
        )
        out["champion_model_id"] = model_id
        out["champion_changed"] = True
    return out


def predict(run: RunContext) -> dict[str, Any]:
    """Score every name of D's universe with D's champion into ops.predictions.

    A name with no feature row at D or a null model input is skipped and
    counted; nothing is filled. D's previous rows are replaced.

    Parameters
    ----------
    run : RunContext
        The run: its session is the logical date D; its run id is stored on each row.

    Returns
    -------
    dict
        JSON-serialisable: ``session``, ``model_id``, ``universe_size``,
        ``rows_written``, ``names_skipped``, ``skipped_by_reason`` and
        ``skipped_symbols`` (the first 50).

    Raises
    ------
    NoChampionError
        No model is champion at D.
    ModelError
        D's universe is empty (the marts are not built for D).
    """
    session, settings, run_id = run.session, run.settings, run.run_id
    get_calendar(settings.exchange).require_session(session)
    started = time.perf_counter()
    with run.transaction() as conn:
        champion = champion_as_of(conn, session)
        if champion is None:
            raise NoChampionError(f"no model is champion at {session}: run retrain_model first")
        booster = load_booster(
            settings.models_dir / champion.artifact_path, champion.artifact_checksum
        )
        schema = settings.model.marts_schema
        cache = run.relations
        universe = load_universe(conn, session, schema, cache=cache)
        if not universe:
            raise ModelError(f"{schema}.universe has no tradable name at {session}")
        available = set(feature_columns(conn, schema, cache=cache))
        columns = [c for c in champion.features if c in available]
        frame = load_features(conn, session, session, columns, symbols=universe, schema=schema,
                              cache=cache)
        scored = score_cross_section(booster, champion.features, frame, universe)
        with conn.cursor() as cur:
            cur.execute("delete from ops.predictions where session_date = %s", (session,))
            # one statement for the cross-section (arrays of names and scores)
            cur.execute(
                "insert into ops.predictions (session_date, symbol, score, model_id, run_id) "
                "select %s, s.symbol, s.score, %s, %s "
                "from unnest(%s::text[], %s::double precision[]) as s (symbol, score)",
                (
                    session,
                    champion.model_id,
                    run_id,
                    [str(symbol) for symbol in scored.scores["symbol"]],
                    [float(score) for score in scored.scores["score"]],
                ),
            )
    by_reason: dict[str, int] = {}
    for why in scored.skipped.values():
        by_reason[why] = by_reason.get(why, 0) + 1
    return {
        "session": session.isoformat(),
        "model_id": champion.model_id,
        "model_trained_through": champion.trained_through.isoformat(),
        "universe_size": len(universe),
        "rows_written": int(len(scored.scores)),
        "names_skipped": len(scored.skipped),
        "skipped_by_reason": by_reason,
        "skipped_symbols": list(scored.skipped)[:_SHOWN_NAMES],
        "seconds": round(time.perf_counter() - started, 3),
    }
