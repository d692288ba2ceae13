"""The retrain and predict stages on the real PostgreSQL, reading mart tables of a synthetic market.

The mart tables are written from the synthetic frames into their own schema
(``settings.model.marts_schema``), so these tests do not depend on, or
disturb, the dbt-built ``marts`` schema.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import date, timedelta

import pandas as pd
import pytest

from quant.config import ModelSettings, Settings
from quant.db import connect
from quant.exceptions import NoChampionError
from quant.model import predict, retrain_model
from quant.pipeline import run_context
from quant.testing.db import execute, query
from quant.testing.marts import Market

pytestmark = pytest.mark.integration

SCHEMA = "model_test_marts"
PRISTINE = "model_test_marts_pristine"
EARLY = date(2016, 6, 1)
MONDAY = date(2016, 8, 29)
TUESDAY = date(2016, 8, 30)
WEDNESDAY = date(2016, 8, 31)


def _copy(cur, schema: str, table: str, frame: pd.DataFrame) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False, na_rep="")
    buffer.seek(0)
    columns = ", ".join(f'"{c}"' for c in frame.columns)
    cur.copy_expert(f"copy {schema}.{table} ({columns}) from stdin with (format csv)", buffer)


def write_marts(settings: Settings, market: Market, schema: str) -> None:
    """Replace ``schema``'s features, labels and universe with the market's frames."""
    features = market.features
    labels = market.labels
    numeric = [c for c in features.columns if c not in ("symbol", "session_date")]
    label_cols = [c for c in labels.columns if c not in ("symbol", "session_date")]
    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(f"drop schema if exists {schema} cascade")
            cur.execute(f"create schema {schema}")
            cols = ", ".join(f'"{c}" double precision' for c in numeric)
            cur.execute(
                f"create table {schema}.features (symbol text, session_date date, {cols}, "
                "primary key (symbol, session_date))"
            )
            label_defs = ", ".join(
                f'"{c}" {"date" if "label_end_date" in c else "double precision"}'
                for c in label_cols
            )
            cur.execute(
                f"create table {schema}.labels (symbol text, session_date date, {label_defs}, "
                "primary key (symbol, session_date))"
            )
            cur.execute(
                f"create table {schema}.universe (symbol text, session_date date, "
                "is_tradable boolean not null, primary key (symbol, session_date))"
            )
            _copy(cur, schema, "features", features)
            _copy(cur, schema, "labels", labels)
            universe = features[["symbol", "session_date"]].assign(is_tradable=True)
            _copy(cur, schema, "universe", universe)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def pristine_marts(pg_settings: Settings, signal_market: Market) -> Iterator[str]:
    """The signal market's mart tables, written once per module."""
    write_marts(pg_settings, signal_market, PRISTINE)
    yield PRISTINE
    execute(pg_settings, f"drop schema if exists {PRISTINE} cascade")


@pytest.fixture()
def stage_settings(
    clean_db: Settings, model_settings: ModelSettings, pristine_marts: str
) -> Iterator[Settings]:
    """Settings whose model reads a fresh copy of the signal market's marts."""
    statements = [f"drop schema if exists {SCHEMA} cascade", f"create schema {SCHEMA}"]
    for table in ("features", "labels", "universe"):
        statements.append(
            f"create table {SCHEMA}.{table} as select * from {pristine_marts}.{table}"
        )
    execute(clean_db, "; ".join(statements))
    model = model_settings.model_copy(update={"marts_schema": SCHEMA})
    yield clean_db.model_copy(update={"model": model})
    execute(clean_db, f"drop schema if exists {SCHEMA} cascade")


def _predictions(settings: Settings, day: date) -> pd.DataFrame:
    rows = query(
        settings,
        "select symbol, score, model_id from ops.predictions where session_date = %s "
        "order by symbol",
        day,
    )
    return pd.DataFrame(rows, columns=["symbol", "score", "model_id"])


def test_retrain_model_when_no_champion_then_trains_promotes_and_rerun_reuses_model(
    stage_settings: Settings,
) -> None:
    first = retrain_model(run_context(TUESDAY, settings=stage_settings, run_id="r1"))
    assert json.loads(json.dumps(first, allow_nan=False)) == first
    assert first["action"] == "retrained"
    assert first["reason"] == "no_champion"
    assert first["model_created"] is True
    assert first["champion_changed"] is True
    assert first["metrics"]["rank_ic"] > 0.05
    # the last validation fold against the tradeable return: IC decay and ICIR, in the registry
    tradeable = first["tradeable_metrics"]
    assert set(tradeable["ic_decay"]) == {"1", "5", "10", "20"}
    assert tradeable["ic_decay"]["1"]["sessions"] > 0
    assert tradeable["icir"] == tradeable["ic_decay"]["1"]["icir"]
    stored = query(stage_settings, "select metrics -> 'tradeable' from ops.models")
    assert stored == [(tradeable,)]

    again = retrain_model(run_context(TUESDAY, settings=stage_settings, run_id="r2"))
    assert again["model_id"] == first["model_id"]
    assert again["model_created"] is False
    assert again["artifact_checksum"] == first["artifact_checksum"]
    rows = query(stage_settings, "select model_id, status, artifact_path from ops.models")
    assert len(rows) == 1
    assert rows[0][1] == "champion"
    artifact = stage_settings.models_dir / rows[0][2]
    assert artifact.is_file()
    decisions = query(
        stage_settings, "select session_date, action, run_id from ops.retrain_decisions"
    )
    assert decisions == [(TUESDAY, "retrained", "r2")]


def test_retrain_model_when_not_due_then_skipped_and_reason_recorded(
    stage_settings: Settings,
) -> None:
    retrain_model(run_context(MONDAY, settings=stage_settings))
    skipped = retrain_model(run_context(TUESDAY, settings=stage_settings))
    assert json.loads(json.dumps(skipped, allow_nan=False)) == skipped
    assert skipped["action"] == "skipped"
    assert skipped["reason"] == "not_due"
    assert skipped["drift_psi"] < stage_settings.model.drift_threshold
    assert query(stage_settings, "select count(*) from ops.models") == [(1,)]
    assert query(
        stage_settings,
        "select action, reason from ops.retrain_decisions where session_date = %s",
        TUESDAY,
    ) == [("skipped", "not_due")]


def test_retrain_model_when_forced_then_retrains_although_not_due(
    stage_settings: Settings,
) -> None:
    retrain_model(run_context(MONDAY, settings=stage_settings))
    forced = retrain_model(run_context(TUESDAY, settings=stage_settings), force=True)
    assert forced["action"] == "retrained"
    assert forced["reason"] == "forced"
    assert query(stage_settings, "select count(*) from ops.models") == [(2,)]


def _return_5d_in_percent(settings: Settings) -> None:
    """The feed starts reporting the 5-day return in percent over the whole drift window."""
    execute(
        settings,
        f"update {SCHEMA}.features set return_5d = return_5d * 100 "
        "where session_date > %s and session_date <= %s",
        MONDAY - timedelta(days=60), TUESDAY,
    )


def test_retrain_model_when_feature_drift_above_threshold_then_retrains(
    stage_settings: Settings,
) -> None:
    retrain_model(run_context(EARLY, settings=stage_settings))
    calm = retrain_model(run_context(TUESDAY, settings=stage_settings))
    assert calm["reason"] == "not_due"
    _return_5d_in_percent(stage_settings)
    drifted = retrain_model(run_context(TUESDAY, settings=stage_settings))
    assert drifted["action"] == "retrained"
    assert drifted["reason"] == "drift"
    assert drifted["drift_psi"] > stage_settings.model.drift_threshold
    assert list(drifted["drift_top"])[0] == "return_5d"


def test_retrain_model_when_drift_but_champion_younger_than_window_then_deferred_without_fit(
    stage_settings: Settings,
) -> None:
    retrain_model(run_context(MONDAY, settings=stage_settings))
    _return_5d_in_percent(stage_settings)
    deferred = retrain_model(run_context(TUESDAY, settings=stage_settings))
    # a model fitted now could not be compared with Monday's champion: it would be thrown away
    assert deferred["drift_psi"] > stage_settings.model.drift_threshold
    assert deferred["action"] == "skipped"
    assert deferred["reason"] == "drift_deferred"
    assert query(stage_settings, "select count(*) from ops.models") == [(1,)]


def test_retrain_model_when_challenger_worse_on_window_then_not_promoted_and_champion_predicts(
    stage_settings: Settings,
) -> None:
    champion = retrain_model(run_context(EARLY, settings=stage_settings))
    # a challenger restricted to one uninformative input ranks worse on the recent sessions
    weak = stage_settings.model.model_copy(update={"features": ("log_adv_20d_usd",)})
    challenger = retrain_model(
        run_context(TUESDAY, settings=stage_settings.model_copy(update={"model": weak})),
        force=True,
    )
    assert challenger["action"] == "retrained"
    assert challenger["promoted"] is False
    assert challenger["promotion_code"] == "not_better_on_window"
    window = challenger["selection"]
    assert window["challenger"]["rank_ic"] < window["champion"]["rank_ic"]
    assert challenger["champion_changed"] is False
    assert challenger["champion_model_id"] == champion["model_id"]
    statuses = dict(query(stage_settings, "select model_id, status from ops.models"))
    assert statuses == {champion["model_id"]: "champion", challenger["model_id"]: "challenger"}
    result = predict(run_context(TUESDAY, settings=stage_settings))
    assert result["model_id"] == champion["model_id"]


def test_retrain_model_when_challenger_better_then_promoted_and_old_champion_retired(
    stage_settings: Settings,
) -> None:
    weak = stage_settings.model.model_copy(update={"features": ("log_adv_20d_usd",)})
    old = retrain_model(
        run_context(EARLY, settings=stage_settings.model_copy(update={"model": weak})),
    )
    new = retrain_model(run_context(TUESDAY, settings=stage_settings), force=True)
    assert new["champion_changed"] is True
    assert new["promotion_code"] == "better_on_window"
    statuses = dict(query(stage_settings, "select model_id, status from ops.models"))
    assert statuses == {old["model_id"]: "retired", new["model_id"]: "champion"}
    # each session is scored by the champion of that session
    assert predict(run_context(MONDAY, settings=stage_settings))["model_id"] == old["model_id"]
    assert predict(run_context(TUESDAY, settings=stage_settings))["model_id"] == new["model_id"]


def test_retrain_model_when_challenger_better_on_window_then_replaces_champion_with_higher_old_score(
    stage_settings: Settings,
) -> None:
    weak = stage_settings.model.model_copy(update={"features": ("log_adv_20d_usd",)})
    lucky = retrain_model(
        run_context(EARLY, settings=stage_settings.model_copy(update={"model": weak})),
    )
    # the champion's validation record was a lucky draw, far above what any model here reaches
    execute(
        stage_settings,
        "update ops.models set validation_rank_ic = 0.9, "
        "metrics = jsonb_set(metrics, '{validation,rank_ic}', '0.9') "
        "where model_id = %s",
        lucky["model_id"],
    )
    challenger = retrain_model(run_context(TUESDAY, settings=stage_settings), force=True)
    assert challenger["metrics"]["rank_ic"] < 0.9
    assert challenger["champion_changed"] is True
    assert challenger["promoted"] is True
    assert challenger["champion_model_id"] == challenger["model_id"]
    window = challenger["selection"]
    assert window["sessions"] == stage_settings.model.selection_sessions
    # the window lies after the champion's training and ends where the tradeable return is known
    assert date.fromisoformat(window["window_start"]) > EARLY
    assert date.fromisoformat(window["window_end"]) < TUESDAY
    assert window["challenger"]["rank_ic"] > window["champion"]["rank_ic"]
    assert set(window["challenger"]["ic_decay"]) <= {"1", "5", "10", "20"}
    assert "icir" in window["challenger"]


def test_retrain_model_when_champion_younger_than_window_then_kept(
    stage_settings: Settings,
) -> None:
    weak = stage_settings.model.model_copy(update={"features": ("log_adv_20d_usd",)})
    old = retrain_model(
        run_context(MONDAY, settings=stage_settings.model_copy(update={"model": weak})),
    )
    new = retrain_model(run_context(TUESDAY, settings=stage_settings), force=True)
    assert new["promoted"] is False
    assert new["promotion_code"] == "window_too_short"
    assert new["champion_model_id"] == old["model_id"]


def test_predict_when_champion_then_universe_scored_missing_features_skipped_and_rerun_replaces(
    stage_settings: Settings, signal_market: Market
) -> None:
    model = retrain_model(run_context(WEDNESDAY, settings=stage_settings))
    execute(
        stage_settings,
        f"update {SCHEMA}.features set return_5d = null where session_date = %s and symbol in "
        "('SYN001', 'SYN002')",
        WEDNESDAY,
    )
    first = predict(run_context(WEDNESDAY, settings=stage_settings, run_id="run-a"))
    assert json.loads(json.dumps(first, allow_nan=False)) == first
    universe = {
        s
        for s, d in zip(
            signal_market.features["symbol"], signal_market.features["session_date"], strict=True
        )
        if d == WEDNESDAY
    }
    assert first["universe_size"] == len(universe)
    assert first["names_skipped"] == 2
    assert first["skipped_by_reason"] == {"missing_features": 2}
    assert first["rows_written"] == len(universe) - 2
    rows = _predictions(stage_settings, WEDNESDAY)
    assert set(rows["symbol"]) == universe - {"SYN001", "SYN002"}
    assert (rows["model_id"] == model["model_id"]).all()

    second = predict(run_context(WEDNESDAY, settings=stage_settings, run_id="run-b"))
    assert second["rows_written"] == first["rows_written"]
    pd.testing.assert_frame_equal(_predictions(stage_settings, WEDNESDAY), rows)
    assert query(stage_settings, "select distinct run_id from ops.predictions") == [("run-b",)]


def test_stages_when_rows_after_session_perturbed_then_same_model_and_predictions(
    stage_settings: Settings,
) -> None:
    model = retrain_model(run_context(WEDNESDAY, settings=stage_settings))
    predict(run_context(WEDNESDAY, settings=stage_settings))
    before = _predictions(stage_settings, WEDNESDAY)

    execute(
        stage_settings,
        f"update {SCHEMA}.features set return_5d = -return_5d * 3, volatility_20d = 9 "
        "where session_date > %s",
        WEDNESDAY,
    )
    execute(
        stage_settings,
        f"update {SCHEMA}.labels set forward_return_5d = -forward_return_5d, "
        "forward_return_1d = 0.5 where session_date > %s or label_end_date_5d > %s",
        WEDNESDAY, WEDNESDAY,
    )
    execute(
        stage_settings, "truncate ops.predictions, ops.retrain_decisions, ops.model_promotions"
    )
    execute(stage_settings, "delete from ops.models")
    again = retrain_model(run_context(WEDNESDAY, settings=stage_settings))
    predict(run_context(WEDNESDAY, settings=stage_settings))
    after = _predictions(stage_settings, WEDNESDAY)

    assert again["artifact_checksum"] == model["artifact_checksum"]
    pd.testing.assert_frame_equal(
        before.drop(columns="model_id"), after.drop(columns="model_id"), check_exact=True
    )


def test_predict_when_no_champion_then_raises(stage_settings: Settings) -> None:
    with pytest.raises(NoChampionError):
        predict(run_context(WEDNESDAY, settings=stage_settings))


def test_retrain_model_when_pretrained_model_given_then_registered_without_fitting(
    stage_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quant.model import _stages as stages
    from quant.model import fit_model

    conn = connect(stage_settings)
    try:
        fitted = fit_model(conn, TUESDAY, stage_settings)
    finally:
        conn.close()
    asked: list[date] = []

    def source(day: date, settings: Settings):
        asked.append(day)
        return fitted

    def no_fit(*args, **kwargs):
        raise AssertionError("the retrain fitted a model although one was given")

    monkeypatch.setattr(stages, "fit_model", no_fit)
    decision = retrain_model(
        run_context(TUESDAY, settings=stage_settings, run_id="r1", models=source)
    )

    assert asked == [TUESDAY]
    assert decision["action"] == "retrained"
    assert decision["artifact_checksum"] == fitted.checksum
    assert decision["champion_changed"] is True


def test_retrain_model_when_source_has_no_model_then_fits_the_same_model_itself(
    stage_settings: Settings,
) -> None:
    from quant.model import fit_model

    conn = connect(stage_settings)
    try:
        expected = fit_model(conn, TUESDAY, stage_settings).checksum
    finally:
        conn.close()
    decision = retrain_model(
        run_context(TUESDAY, settings=stage_settings, run_id="r1", models=lambda day, s: None)
    )

    assert decision["action"] == "retrained"
    assert decision["artifact_checksum"] == expected


def test_trainer_when_dates_planned_then_fits_equal_inline_fits(stage_settings: Settings) -> None:
    from quant.backtest._trainer import Trainer
    from quant.model import fit_model

    settings = stage_settings.model_copy(
        update={"model": stage_settings.model.model_copy(update={"retrain_schedule": "daily"})}
    )
    conn = connect(settings)
    try:
        expected = {day: fit_model(conn, day, settings).checksum for day in (MONDAY, TUESDAY)}
    finally:
        conn.close()
    trainer = Trainer(settings, [MONDAY, TUESDAY])
    try:
        assert trainer.dates == [MONDAY, TUESDAY]
        assert trainer(TUESDAY, settings).checksum == expected[TUESDAY]
        assert trainer(MONDAY, settings).checksum == expected[MONDAY]
        assert trainer(TUESDAY + timedelta(days=1), settings) is None  # not planned
        other = settings.model_copy(
            update={"model": settings.model.model_copy(update={"num_leaves": 7})}
        )
        assert trainer(MONDAY, other) is None  # fitted for other settings
    finally:
        trainer.stop()


def test_trainer_when_child_fails_then_backtest_error_names_training(
    stage_settings: Settings,
) -> None:
    from quant.backtest._trainer import Trainer
    from quant.exceptions import BacktestError

    broken = stage_settings.model_copy(
        update={"model": stage_settings.model.model_copy(update={"marts_schema": "no_such_schema"})}
    )
    trainer = Trainer(broken, [MONDAY, TUESDAY])
    try:
        with pytest.raises(BacktestError, match=r"^training: "):
            trainer(MONDAY, broken)
    finally:
        trainer.stop()


def _drift_fired_share(settings: Settings, start: date, end: date) -> tuple[float, list[date]]:
    """Run the retrain stage on every session of ``start..end``: the share and days drift fired."""
    from quant.calendar import get_calendar

    never = settings.model.model_copy(update={"retrain_schedule": "never"})
    settings = settings.model_copy(update={"model": never})
    days = list(get_calendar(settings.exchange).sessions(start, end))
    fired = []
    for day in days:
        decision = retrain_model(run_context(day, settings=settings))
        psi = decision["drift_psi"]
        if psi is not None and (psi == "inf" or psi > decision["drift_threshold"]):
            fired.append(day)
    print(f"drift fired on {len(fired)} of {len(days)} sessions {start}..{end}")  # noqa: T201
    return len(fired) / len(days), fired


def test_retrain_model_when_synthetic_market_then_drift_fires_on_under_10_percent_of_sessions(
    stage_settings: Settings,
) -> None:
    share, fired = _drift_fired_share(stage_settings, date(2016, 5, 2), date(2016, 9, 30))
    assert share < 0.10, fired


def test_retrain_model_when_volatility_regime_shifts_then_drift_fires_soon_after(
    stage_settings: Settings,
) -> None:
    shift = date(2016, 8, 1)
    # from the shift on, every name's volatility doubles (its volatility features with it)
    execute(
        stage_settings,
        f"update {SCHEMA}.features set volatility_5d = volatility_5d * 2, "
        "volatility_10d = volatility_10d * 2, volatility_20d = volatility_20d * 2, "
        "downside_volatility_20d = downside_volatility_20d * 2 where session_date >= %s",
        shift,
    )
    before, fired_before = _drift_fired_share(stage_settings, date(2016, 6, 1), date(2016, 7, 29))
    after, fired = _drift_fired_share(stage_settings, shift, date(2016, 8, 31))
    assert before < 0.10, fired_before
    assert fired and fired[0] <= date(2016, 8, 12)
    decisions = query(
        stage_settings,
        "select reason, details ->> 'promotion_code', count(*) from ops.retrain_decisions "
        "where session_date >= %s group by 1, 2 order by 1, 2",
        shift,
    )
    print(f"decisions after the shift: {decisions}")  # noqa: T201
    retrained = {(reason, code): n for reason, code, n in decisions if reason == "drift"}
    assert sum(retrained.values()) >= 1
    # while the champion is younger than the selection window a drift retrain waits: none of
    # the fits after the shift was thrown away for want of a window
    assert ("drift", "window_too_short") not in retrained
