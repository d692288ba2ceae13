"""The model stages on the real dbt marts: synthetic bars ingested, dbt built, model trained.

One module-scoped market: 60 names with the planted reversal signal over
about 480 sessions, ingested into raw.bars and built by the real dbt project.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

import pytest

from quant.calendar import get_calendar
from quant.config import ModelSettings, Settings, load_settings

pytestmark = pytest.mark.integration

SYMBOLS = 60
END = date(2016, 12, 30)
HISTORY_SESSIONS = 480


def _query(settings: Settings, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
    from quant.db import connect

    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def _clear_ops(settings: Settings) -> None:
    _query(
        settings,
        "truncate ops.predictions, ops.retrain_decisions, ops.model_promotions, ops.models "
        "restart identity cascade",
    )


def _build(settings: Settings, session: date) -> None:
    from quant.transform import dbt_vars, run_dbt

    run_dbt(
        ["run", "--quiet", "--full-refresh", "--select", "+marts"],
        settings=settings,
        vars=dbt_vars(session, settings),
    )


@pytest.fixture(scope="module")
def marts(pg_settings: Settings) -> Iterator[dict[str, Any]]:
    """Raw bars of a signal market ingested; the marts built as of END."""
    from quant.data import SyntheticProvider, ingest_bars

    model = ModelSettings(
        validation_sessions=40,
        min_data_in_leaf=50,
        max_feature_null_share=0.5,
        num_boost_round=200,
    )
    settings = load_settings(synthetic={"symbols": SYMBOLS, "signal_strength": 0.1}, model=model)
    provider = SyntheticProvider(symbols=SYMBOLS, seed=settings.synthetic.seed, signal_strength=0.1)
    cal = get_calendar(settings.exchange)
    tables = _query(
        settings,
        "select quote_ident(schemaname) || '.' || quote_ident(tablename) from pg_tables "
        "where schemaname in ('raw', 'ops') and tablename <> 'schema_migrations'",
    )
    _query(settings, f"truncate {', '.join(t[0] for t in tables)} restart identity cascade")
    _query(settings, "drop schema if exists staging, intermediate, marts cascade")
    ingest_bars(END, start=cal.shift(END, -HISTORY_SESSIONS), settings=settings, provider=provider)
    _build(settings, END)
    yield {"settings": settings, "calendar": cal}
    _clear_ops(settings)
    _query(settings, "drop schema if exists staging, intermediate, marts cascade")


def test_retrain_and_predict_when_marts_built_then_model_learns_signal_and_scores_universe(
    marts: dict[str, Any],
) -> None:
    from quant.model import predict, retrain_model

    settings: Settings = marts["settings"]
    session = marts["calendar"].shift(END, -30)
    _clear_ops(settings)
    trained = retrain_model(session, settings=settings)
    assert trained["action"] == "retrained"
    assert trained["features"] >= 20
    assert trained["metrics"]["rank_ic"] > 0.05

    result = predict(session, settings=settings)
    universe = _query(
        settings,
        "select count(*) from marts.universe where session_date = %s and is_tradable",
        (session,),
    )[0][0]
    assert result["universe_size"] == universe > 0
    assert result["rows_written"] + result["names_skipped"] == universe
    assert result["rows_written"] > 0
    stored = _query(
        settings, "select count(*) from ops.predictions where session_date = %s", (session,)
    )
    assert stored == [(result["rows_written"],)]


def test_retrain_when_marts_rebuilt_as_of_session_then_same_model_as_from_later_build(
    marts: dict[str, Any],
) -> None:
    from quant.model import predict, retrain_model

    settings: Settings = marts["settings"]
    session = marts["calendar"].shift(END, -30)
    _clear_ops(settings)
    from_later_build = retrain_model(session, settings=settings)
    predict(session, settings=settings)
    later_scores = _query(
        settings,
        "select symbol, score from ops.predictions where session_date = %s order by symbol",
        (session,),
    )

    try:
        # the marts as the DAG run for `session` saw them: nothing after its close exists
        _build(settings, session)
        assert _query(settings, "select max(session_date) from marts.features") == [(session,)]
        _clear_ops(settings)
        from_own_build = retrain_model(session, settings=settings)
        predict(session, settings=settings)
        own_scores = _query(
            settings,
            "select symbol, score from ops.predictions where session_date = %s order by symbol",
            (session,),
        )
    finally:
        _build(settings, END)

    assert from_own_build["train_rows"] == from_later_build["train_rows"]
    assert from_own_build["artifact_checksum"] == from_later_build["artifact_checksum"]
    assert own_scores == later_scores
