"""Model benchmark: training on 500 symbols x 5 years of daily features, prediction for 500.

Prints one JSON object:

* ``feature_source``: ``mart`` (the real dbt feature, label and universe marts,
  built over synthetic bars in a throwaway database) or ``synthetic``
  (``quant.model.price_features`` over the same synthetic bars, in memory: the
  same shape, fewer columns).
* ``train_rows``, ``train_sessions``, ``features``: what the model learned from.
* ``training_seconds``: :func:`quant.model.train_model` on the loaded frames
  (walk-forward folds with early stopping plus the final fit), wall clock;
  ``training_cpu_seconds`` the CPU time of the process (the two differ when
  other work shares the machine).
* ``retrain_stage_seconds`` (mart only): the ``retrain_model`` stage end to
  end (reading the marts, training, artifact and registry).
* ``prediction_seconds``: scoring one session's 500 names from the model's
  text artifact (:func:`quant.model.score_cross_section`).
* ``predict_stage_seconds`` (mart only): the ``predict`` stage end to end
  (reading the universe and features, scoring, writing ops.predictions).
* ``validation``: the walk-forward metrics. The synthetic market has a planted
  reversal (``--signal-strength``, default 0.1) so that early stopping lets the
  model grow a realistic number of trees; with 0 it stops after one round.

Goals: training under 60 s, prediction under 1 s on a 2-core machine. The
mart source uses its own QUANT_HOME (removed at the end).

``--backtest-sessions N`` measures instead the model stages as a backtest
calls them: ``retrain_model`` then ``predict`` for each of the last N
sessions, reading the marts from a :class:`quant.db.RelationCache` filled by
:func:`quant.model.cache_model_inputs`, with a user's research settings for
a backtest (``--train-window 252 --folds 1 --rounds 100 --threads 2``,
weekly retraining; the drift trigger is off with ``--drift-threshold``, the
drift statistic is still computed every session; ``--bin-sample-rows``
sets ``QUANT_MODEL__BIN_SAMPLE_ROWS``). It prints:

* ``cache_load_seconds``: :func:`quant.model.cache_model_inputs` (one COPY
  per mart);
* ``retrain_seconds``: the retrain stage on a session it retrains
  (``mean``, ``median``, ``min``, ``max``, ``count``; ``retrain_cpu_seconds`` its CPU
  time, which other work on the machine disturbs less), ``train_model_seconds``
  the training inside it (LightGBM's datasets and boosting, validation, the
  reference distribution); ``final_rounds`` and ``fold_rounds`` the boosting
  rounds of each model (early stopping decides them). LightGBM's threads wait
  for each other: when another process keeps a core busy, a 2-thread fit
  takes several times longer (``OMP_WAIT_POLICY=PASSIVE`` in the environment
  limits that; one thread does not suffer from it);
* ``decision_seconds``: the retrain stage on a session it skips (champion
  lookup, drift statistic over ``drift_window_sessions``, the decision row);
* ``predict_seconds``: the predict stage (universe, features, scoring,
  writing ops.predictions);
* ``sql_*``: the same stages for a few sessions without the cache, to compare;
* ``projected_model_seconds``: the model side of a 1,260-session backtest at
  these rates (a retrain a week: 252 retrains, the other sessions a decision,
  a predict every session).

``--home DIR`` reuses a QUANT_HOME whose marts are built (no ingestion, no
dbt; the home is kept, but its ops.models, ops.model_promotions,
ops.retrain_decisions and ops.predictions are emptied first).

Run: ``.venv/bin/python bench/model.py [--source mart|synthetic] [--symbols 500] [--years 5]``
or ``.venv/bin/python bench/model.py --backtest-sessions 60 [--home DIR] [--symbols 500]``
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

from _scratch import bench_home, bench_parser, print_figures

from quant.pipeline import run_context

WARMUP_SESSIONS = 260
"""Sessions of bars before the training window, so that trailing windows are full."""


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--source", choices=("mart", "synthetic"), default="mart")
    parser.add_argument(
        "--threads", type=int, default=None, help="LightGBM threads (default: setting)"
    )
    parser.add_argument(
        "--signal-strength",
        type=float,
        default=0.1,
        help="planted reversal of the synthetic market (0 = none: early stopping ends at once)",
    )
    parser.add_argument(
        "--backtest-sessions",
        type=int,
        default=0,
        help="measure retrain_model and predict per session over the last N sessions (cached marts)",
    )
    parser.add_argument("--home", type=Path, default=None, help="a QUANT_HOME with built marts")
    parser.add_argument("--train-window", type=int, default=252)
    parser.add_argument("--folds", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--drift-threshold", type=float, default=1e9)
    parser.add_argument(
        "--bin-sample-rows",
        type=int,
        default=None,
        help="QUANT_MODEL__BIN_SAMPLE_ROWS (default: the setting's, every training row)",
    )
    parser.add_argument("--sql-sessions", type=int, default=5)
    args = parser.parse_args()

    with bench_home("qbench-model-", args.home) as home:
        result = _run_backtest_stages(args, home) if args.backtest_sessions else _run(args, home)
    return print_figures(result, indent=2)


def _run(args: argparse.Namespace, home: Path) -> dict:
    from quant.calendar import get_calendar
    from quant.config import ModelSettings, load_settings
    from quant.data import SyntheticProvider

    sessions = 252 * args.years
    model = ModelSettings() if args.threads is None else ModelSettings(num_threads=args.threads)
    model = model.model_copy(update={"train_window_sessions": sessions})
    settings = load_settings(home=home, synthetic={"symbols": args.symbols}, model=model)
    cal = get_calendar(settings.exchange)
    end = cal.session_on_or_before(args.end)
    start = cal.shift(end, -(sessions + WARMUP_SESSIONS))
    provider = SyntheticProvider(
        symbols=args.symbols, seed=settings.synthetic.seed, signal_strength=args.signal_strength
    )
    result: dict = {
        "feature_source": args.source,
        "symbols": args.symbols,
        "years": args.years,
        "as_of": end.isoformat(),
        "signal_strength": args.signal_strength,
        "num_threads": model.num_threads,
    }
    if args.source == "mart":
        features, labels, extra = _mart_frames(settings, provider, start, end)
        result.update(extra)
    else:
        features, labels = _synthetic_frames(provider, start, end)
    result.update(_train_and_score(settings, features, labels, end))
    if args.source == "mart":
        result.update(_stages(settings, end))
    return result


def _synthetic_frames(provider, start: date, end: date):
    from quant.model import forward_labels, price_features

    bars = provider.bars(start, end)
    actions = provider.corporate_actions(start, end)
    return price_features(bars, actions), forward_labels(bars, actions)


def _mart_frames(settings, provider, start: date, end: date):
    from quant.data import ingest_bars
    from quant.db import connect, migrate
    from quant.model import load_features, load_labels
    from quant.model._marts import feature_columns
    from quant.transform import dbt_vars, run_dbt

    migrate(settings)
    t0 = time.perf_counter()
    ingest_bars(end, start=start, settings=settings, provider=provider)
    run_dbt(
        ["run", "--quiet", "--full-refresh", "--select", "+marts"],
        settings=settings,
        vars=dbt_vars(end, settings),
    )
    build_seconds = time.perf_counter() - t0
    conn = connect(settings)
    try:
        t0 = time.perf_counter()
        columns = feature_columns(conn)
        features = load_features(conn, start, end, columns)
        labels = load_labels(conn, start, end, settings.model.horizon_sessions)
        load_seconds = time.perf_counter() - t0
    finally:
        conn.close()
    return (
        features,
        labels,
        {
            "ingest_and_dbt_seconds": round(build_seconds, 1),
            "mart_load_seconds": round(load_seconds, 2),
        },
    )


def _train_and_score(settings, features, labels, end: date) -> dict:
    import pandas as pd

    from quant.model import score_cross_section, train_model

    t0, c0 = time.perf_counter(), time.process_time()
    model = train_model(features, labels, as_of=end, settings=settings.model)
    training_seconds = time.perf_counter() - t0
    training_cpu_seconds = time.process_time() - c0
    today = features[pd.to_datetime(features["session_date"]) == pd.Timestamp(end)]
    timings = []
    for _ in range(5):
        t0 = time.perf_counter()
        scored = score_cross_section(model.model_text, model.features, today)
        timings.append(time.perf_counter() - t0)
    return {
        "train_rows": model.train_rows,
        "train_sessions": model.train_sessions,
        "features": len(model.features),
        "boosting_rounds": model.num_boost_round,
        "training_seconds": round(training_seconds, 2),
        "training_cpu_seconds": round(training_cpu_seconds, 2),
        "prediction_names": int(len(scored.scores)),
        "prediction_seconds": round(min(timings), 4),
        "validation": model.metrics["validation"],
    }


def _stages(settings, end: date) -> dict:
    from quant.model import predict, retrain_model

    t0 = time.perf_counter()
    retrain_model(run_context(end, settings=settings), force=True)
    retrain_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    predicted = predict(run_context(end, settings=settings))
    predict_seconds = time.perf_counter() - t0
    return {
        "retrain_stage_seconds": round(retrain_seconds, 2),
        "predict_stage_seconds": round(predict_seconds, 3),
        "predict_rows_written": predicted["rows_written"],
    }


def _summary(values: list[float]) -> dict:
    import statistics

    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "mean": round(statistics.fmean(values), 4),
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def _run_backtest_stages(args: argparse.Namespace, home: Path) -> dict:
    from quant.calendar import get_calendar
    from quant.config import ModelSettings, load_settings
    from quant.data import SyntheticProvider
    from quant.db import RelationCache, connect
    from quant.model import _train, cache_model_inputs, predict, retrain_model

    model = ModelSettings(
        train_window_sessions=args.train_window,
        validation_folds=args.folds,
        num_boost_round=args.rounds,
        num_threads=args.threads or 2,
        retrain_schedule="weekly",
        drift_threshold=args.drift_threshold,
    )
    if args.bin_sample_rows is not None:
        model = model.model_copy(update={"bin_sample_rows": args.bin_sample_rows})
    settings = load_settings(home=home, synthetic={"symbols": args.symbols}, model=model)
    cal = get_calendar(settings.exchange)
    end = cal.session_on_or_before(args.end)
    result: dict = {
        "mode": "backtest_stages",
        "symbols": args.symbols,
        "as_of": end.isoformat(),
        "settings": {
            "train_window_sessions": model.train_window_sessions,
            "validation_folds": model.validation_folds,
            "num_boost_round": model.num_boost_round,
            "num_threads": model.num_threads,
            "retrain_schedule": model.retrain_schedule,
            "drift_threshold": model.drift_threshold,
            "bin_sample_rows": model.bin_sample_rows,
        },
    }
    if args.home is None:
        from quant.data import ingest_bars
        from quant.db import migrate
        from quant.transform import dbt_vars, run_dbt

        migrate(settings)
        history = model.train_window_sessions + model.horizon_sessions + WARMUP_SESSIONS
        provider = SyntheticProvider(
            symbols=args.symbols,
            seed=settings.synthetic.seed,
            signal_strength=args.signal_strength,
        )
        t0 = time.perf_counter()
        start_bars = cal.shift(end, -(history + args.backtest_sessions))
        ingest_bars(end, start=start_bars, settings=settings, provider=provider)
        run_dbt(
            ["run", "--quiet", "--full-refresh", "--select", "+marts"],
            settings=settings,
            vars=dbt_vars(end, settings),
        )
        result["ingest_and_dbt_seconds"] = round(time.perf_counter() - t0, 1)
    sessions = list(cal.sessions(cal.shift(end, -(args.backtest_sessions - 1)), end))
    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "truncate ops.predictions, ops.retrain_decisions, ops.model_promotions, ops.models "
                "restart identity cascade"
            )
        t0 = time.perf_counter()
        cache = RelationCache()
        loaded = cache_model_inputs(conn, cache, sessions[0], sessions[-1], settings)
        result["cache_load_seconds"] = round(time.perf_counter() - t0, 2)
        result["cached"] = {k: [d.isoformat() for d in v] for k, v in loaded.items()}
    finally:
        conn.close()

    trainings: list[float] = []
    real_train = _train.train_model

    def timed_train(*a, **k):
        t = time.perf_counter()
        try:
            return real_train(*a, **k)
        finally:
            trainings.append(time.perf_counter() - t)

    retrains: list[float] = []
    retrain_cpu: list[float] = []
    decisions: list[float] = []
    predicts: list[float] = []
    reasons: dict[str, int] = {}
    import quant.model._stages as stages

    stages.train_model = timed_train
    try:
        c0 = time.process_time()
        w0 = time.perf_counter()
        for day in sessions:
            run = run_context(day, settings=settings, relations=cache)
            t, c = time.perf_counter(), time.process_time()
            decision = retrain_model(run)
            took = time.perf_counter() - t
            (retrains if decision["action"] == "retrained" else decisions).append(took)
            if decision["action"] == "retrained":
                retrain_cpu.append(time.process_time() - c)
            reasons[decision["reason"]] = reasons.get(decision["reason"], 0) + 1
            t = time.perf_counter()
            predict(run)
            predicts.append(time.perf_counter() - t)
        loop_seconds = time.perf_counter() - w0
        loop_cpu_seconds = time.process_time() - c0
        # the same stages reading PostgreSQL: a retrain, then sessions without one
        sql_retrain: list[float] = []
        sql_decisions: list[float] = []
        sql_predicts: list[float] = []
        if args.sql_sessions:
            t = time.perf_counter()
            retrain_model(run_context(sessions[-1], settings=settings), force=True)
            sql_retrain.append(time.perf_counter() - t)
            for day in sessions[-args.sql_sessions:]:
                t = time.perf_counter()
                decision = retrain_model(run_context(day, settings=settings))
                if decision["action"] != "retrained":
                    sql_decisions.append(time.perf_counter() - t)
                t = time.perf_counter()
                predict(run_context(day, settings=settings))
                sql_predicts.append(time.perf_counter() - t)
    finally:
        stages.train_model = real_train
    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "select num_boost_round, metrics -> 'folds' from ops.models order by model_id"
            )
            fitted = cur.fetchall()
    finally:
        conn.close()
    retrain_mean = sum(retrains) / len(retrains) if retrains else 0.0
    decision_mean = sum(decisions) / len(decisions) if decisions else 0.0
    predict_mean = sum(predicts) / len(predicts) if predicts else 0.0
    full, weekly = 1260, 252
    result.update(
        sessions=len(sessions),
        first_session=sessions[0].isoformat(),
        retrains_by_reason=reasons,
        loop_seconds=round(loop_seconds, 2),
        loop_cpu_seconds=round(loop_cpu_seconds, 2),
        retrain_seconds=_summary(retrains),
        retrain_seconds_each=[round(t, 3) for t in retrains],
        retrain_cpu_seconds=_summary(retrain_cpu),
        train_model_seconds=_summary(trainings[: len(retrains)]),
        final_rounds=[int(r) for r, _ in fitted],
        fold_rounds=[int(f["best_iteration"]) for _, folds in fitted for f in folds],
        decision_seconds=_summary(decisions),
        predict_seconds=_summary(predicts),
        sql_retrain_seconds=_summary(sql_retrain),
        sql_decision_seconds=_summary(sql_decisions),
        sql_predict_seconds=_summary(sql_predicts),
        projected_model_seconds=round(
            weekly * retrain_mean + (full - weekly) * decision_mean + full * predict_mean, 1
        ),
    )
    return result


if __name__ == "__main__":
    raise SystemExit(main())
