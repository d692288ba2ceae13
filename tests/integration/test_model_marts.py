"""The model stages on the real dbt marts: synthetic bars ingested, dbt built, model trained.

One module-scoped market: 60 names with the planted reversal signal over
about 480 sessions, ingested into raw.bars and built by the real dbt project.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from quant.calendar import get_calendar
from quant.config import ModelSettings, Settings, load_settings
from quant.pipeline import run_context
from quant.testing.db import execute, query
from quant.testing.marts import dbt_as_of, drop_marts, synthetic_marts

pytestmark = pytest.mark.integration

SYMBOLS = 60
END = date(2016, 12, 30)
HISTORY_SESSIONS = 480
BUILD = ("run", "--quiet", "--full-refresh", "--select", "+marts")


def _clear_ops(settings: Settings) -> None:
    execute(
        settings,
        "truncate ops.predictions, ops.retrain_decisions, ops.model_promotions, ops.models "
        "restart identity cascade",
    )


@pytest.fixture(scope="module")
def marts(pg_settings: Settings, model_settings: ModelSettings) -> Iterator[dict[str, Any]]:
    """Raw bars of a signal market ingested; the marts built as of END."""
    settings = load_settings(
        synthetic={"symbols": SYMBOLS, "signal_strength": 0.1}, model=model_settings
    )
    cal = get_calendar(settings.exchange)
    synthetic_marts(settings, END, start=cal.shift(END, -HISTORY_SESSIONS), command=BUILD)
    yield {"settings": settings, "calendar": cal}
    _clear_ops(settings)
    drop_marts(settings)


def test_retrain_and_predict_when_marts_built_then_model_learns_signal_and_scores_universe(
    marts: dict[str, Any],
) -> None:
    from quant.model import predict, retrain_model

    settings: Settings = marts["settings"]
    session = marts["calendar"].shift(END, -30)
    _clear_ops(settings)
    trained = retrain_model(run_context(session, settings=settings))
    assert trained["action"] == "retrained"
    assert trained["features"] >= 20
    assert trained["metrics"]["rank_ic"] > 0.05

    result = predict(run_context(session, settings=settings))
    universe = query(
        settings,
        "select count(*) from marts.universe where session_date = %s and is_tradable",
        session,
    )[0][0]
    assert result["universe_size"] == universe > 0
    assert result["rows_written"] + result["names_skipped"] == universe
    assert result["rows_written"] > 0
    stored = query(
        settings, "select count(*) from ops.predictions where session_date = %s", session
    )
    assert stored == [(result["rows_written"],)]


def test_retrain_when_marts_rebuilt_as_of_session_then_same_model_as_from_later_build(
    marts: dict[str, Any],
) -> None:
    from quant.model import predict, retrain_model

    settings: Settings = marts["settings"]
    session = marts["calendar"].shift(END, -30)
    _clear_ops(settings)
    from_later_build = retrain_model(run_context(session, settings=settings))
    predict(run_context(session, settings=settings))
    later_scores = query(
        settings,
        "select symbol, score from ops.predictions where session_date = %s order by symbol",
        session,
    )

    try:
        # the marts as the DAG run for `session` saw them: nothing after its close exists
        dbt_as_of(settings, session, BUILD)
        assert query(settings, "select max(session_date) from marts.features") == [(session,)]
        _clear_ops(settings)
        from_own_build = retrain_model(run_context(session, settings=settings))
        predict(run_context(session, settings=settings))
        own_scores = query(
            settings,
            "select symbol, score from ops.predictions where session_date = %s order by symbol",
            session,
        )
    finally:
        dbt_as_of(settings, END, BUILD)

    assert from_own_build["train_rows"] == from_later_build["train_rows"]
    assert from_own_build["artifact_checksum"] == from_later_build["artifact_checksum"]
    assert own_scores == later_scores


# --- the loaders and the stages reading a RelationCache instead of PostgreSQL ---------------


def _connect(settings: Settings):
    from quant.db import connect

    return connect(settings)


def _loader_calls(cal, conn, cache=None) -> list[tuple[str, Any]]:
    """Every loader the model stages use, over ranges inside the cached one (from ``cache``)."""
    from quant.model._marts import (
        feature_columns,
        history_start,
        load_features,
        load_labels,
        load_universe,
    )

    day = cal.shift(END, -30)
    earlier = cal.shift(END, -200)
    weekend = date(2016, 12, 3)  # a Saturday: no row
    columns = feature_columns(conn)
    universe = load_universe(conn, day)
    return [
        ("feature_columns", lambda: feature_columns(conn, cache=cache)),
        ("history_start 20", lambda: history_start(conn, day, 20, cache=cache)),
        ("history_start on a weekend", lambda: history_start(conn, weekend, 5, cache=cache)),
        ("universe", lambda: load_universe(conn, day, cache=cache)),
        ("universe on a weekend", lambda: load_universe(conn, weekend, cache=cache)),
        ("features of a range", lambda: load_features(conn, earlier, day, columns, cache=cache)),
        ("features of a session", lambda: load_features(conn, day, day, columns[:7], cache=cache)),
        (
            "features of the universe",
            lambda: load_features(conn, day, day, columns, symbols=universe[::2], cache=cache),
        ),
        ("features of no name", lambda: load_features(conn, day, day, columns, symbols=[], cache=cache)),
        ("features on a weekend", lambda: load_features(conn, weekend, weekend, columns, cache=cache)),
        ("features without columns", lambda: load_features(conn, earlier, day, [], cache=cache)),
        ("labels h5", lambda: load_labels(conn, earlier, day, 5, cache=cache)),
        ("labels up to the last session", lambda: load_labels(conn, earlier, END, 5, cache=cache)),
        ("labels on a weekend", lambda: load_labels(conn, weekend, weekend, 5, cache=cache)),
    ]


def _assert_same(name: str, expected: Any, got: Any) -> None:
    import pandas as pd
    from pandas.testing import assert_frame_equal

    if isinstance(expected, pd.DataFrame):
        assert_frame_equal(got, expected, check_exact=True, obj=name)
    else:
        assert got == expected, name
        assert type(got) is type(expected), name


def test_loaders_when_cache_holds_marts_then_frames_equal_postgres_reads(
    marts: dict[str, Any],
) -> None:
    from quant.db import RelationCache
    from quant.model import cache_model_inputs

    settings: Settings = marts["settings"]
    cal = marts["calendar"]
    conn = _connect(settings)
    try:
        expected = {name: call() for name, call in _loader_calls(cal, conn)}
        cache = RelationCache()
        cache_model_inputs(conn, cache, cal.shift(END, -200), END, settings)
        conn.rollback()
        calls = _loader_calls(cal, conn, cache)
        with conn.cursor() as cur:
            # nothing may read the marts while the cache answers: take them away
            cur.execute("alter schema marts rename to marts_hidden")
        try:
            got = {name: call() for name, call in calls}
        finally:
            conn.rollback()
    finally:
        conn.close()
    assert len(expected["features of a range"]) > 100 * 20
    assert expected["features on a weekend"].empty
    assert expected["history_start on a weekend"] is not None
    for name, _ in calls:
        _assert_same(name, expected[name], got[name])


def test_loaders_when_cache_misses_range_then_read_postgres(marts: dict[str, Any]) -> None:
    from quant.db import RelationCache
    from quant.model._marts import history_start, load_features, load_labels

    settings: Settings = marts["settings"]
    cal = marts["calendar"]
    conn = _connect(settings)
    try:
        cache = RelationCache()
        late = cal.shift(END, -10)
        for relation in ("marts.features", "marts.universe"):
            cache.load(conn, relation, late, END)
        cache.load(conn, "marts.labels", cal.shift(END, -60), END,
                   columns=["forward_return_5d", "label_end_date_5d"])
        day = cal.shift(END, -30)
        def calls(held=None):
            return [
                ("features before the cache",
                 lambda: load_features(conn, day, END, ["momentum_21d"], cache=held)),
                ("labels before the cache", lambda: load_labels(conn, day, END, 5, cache=held)),
                ("history longer than the cache", lambda: history_start(conn, END, 40, cache=held)),
                ("labels of a horizon not cached",
                 lambda: load_labels(conn, late, END, 1, cache=held)),
            ]

        expected = {name: call() for name, call in calls()}
        got = {name: call() for name, call in calls(cache)}
    finally:
        conn.close()
    assert expected["history longer than the cache"] == cal.shift(END, -39)
    for name in expected:
        _assert_same(name, expected[name], got[name])


def test_cache_model_inputs_when_called_then_holds_lookback_before_start(
    marts: dict[str, Any],
) -> None:
    from quant.db import RelationCache
    from quant.model import cache_model_inputs

    settings: Settings = marts["settings"]
    cal = marts["calendar"]
    cfg = settings.model.model_copy(update={"train_window_sessions": 100, "drift_window_sessions": 20})
    start = cal.shift(END, -50)
    cache = RelationCache()
    conn = _connect(settings)
    try:
        loaded = cache_model_inputs(
            conn, cache, start, END, settings.model_copy(update={"model": cfg})
        )
    finally:
        conn.close()
    # the training window plus the horizon before the first session, through the last one
    first = cal.shift(start, -(100 + cfg.horizon_sessions - 1))
    assert loaded == {
        "marts.features": (first, END),
        "marts.universe": (first, END),
        "marts.labels": (first, END),
    }
    labels = cache.get("marts.labels").frame
    assert {"forward_return_5d", "label_end_date_5d"} <= set(labels.columns)
    assert cache.get("marts.features").frame["session_date"].min().date() == first


def _stage_run(
    settings: Settings, days: list[date], cache: Any = None
) -> tuple[list[dict], list[tuple]]:
    from quant.model import predict, retrain_model

    decisions = []
    for day in days:
        decision = retrain_model(run_context(day, settings=settings, relations=cache))
        decision.pop("seconds")
        decisions.append(decision)
        predict(run_context(day, settings=settings, relations=cache))
    rows = query(
        settings,
        "select p.session_date, p.symbol, p.score, m.artifact_checksum from ops.predictions p "
        "join ops.models m using (model_id) order by p.session_date, p.symbol",
    )
    return decisions, rows


def test_retrain_and_predict_when_cache_given_then_same_decisions_and_predictions(
    marts: dict[str, Any],
) -> None:
    from quant.db import RelationCache
    from quant.model import cache_model_inputs

    cal = marts["calendar"]
    # drift is measured every session but never triggers (the Tuesday must skip)
    cfg = marts["settings"].model.model_copy(
        update={"retrain_schedule": "weekly", "drift_threshold": 1e9}
    )
    settings = marts["settings"].model_copy(update={"model": cfg})
    # a Friday, the Monday after it (weekly retrain), then two sessions of drift checks only
    friday = date(2016, 11, 25)
    days = [friday, cal.next_session(friday), cal.shift(friday, 2), cal.shift(friday, 3)]

    _clear_ops(settings)
    from_postgres = _stage_run(settings, days)

    _clear_ops(settings)
    cache = RelationCache()
    conn = _connect(settings)
    try:
        cache_model_inputs(conn, cache, days[0], days[-1], settings)
    finally:
        conn.close()
    from_cache = _stage_run(settings, days, cache)
    _clear_ops(settings)

    actions = [d["action"] for d in from_postgres[0]]
    assert actions == ["retrained", "retrained", "skipped", "skipped"]
    assert from_postgres[0][3]["drift_psi"] is not None
    assert len(from_postgres[1]) > 4 * 40
    assert from_cache[0] == from_postgres[0]
    assert from_cache[1] == from_postgres[1]
