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

Run: ``.venv/bin/python bench/model.py [--source mart|synthetic] [--symbols 500] [--years 5]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

WARMUP_SESSIONS = 260
"""Sessions of bars before the training window, so that trailing windows are full."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=("mart", "synthetic"), default="mart")
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--end", type=date.fromisoformat, default=date(2025, 11, 20))
    parser.add_argument(
        "--threads", type=int, default=None, help="LightGBM threads (default: setting)"
    )
    parser.add_argument(
        "--signal-strength",
        type=float,
        default=0.1,
        help="planted reversal of the synthetic market (0 = none: early stopping ends at once)",
    )
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="qbench-model-", dir="/tmp"))
    for key in [k for k in os.environ if k.upper().startswith("QUANT_")]:
        del os.environ[key]
    os.environ.pop("DATABASE_URL", None)
    os.environ["QUANT_HOME"] = str(home)
    try:
        result = _run(args, home)
    finally:
        if args.source == "mart":
            from quant.db import stop_embedded

            stop_embedded(home / "pgdata")
        shutil.rmtree(home, ignore_errors=True)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


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
    retrain_model(end, settings=settings, force=True)
    retrain_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    predicted = predict(end, settings=settings)
    predict_seconds = time.perf_counter() - t0
    return {
        "retrain_stage_seconds": round(retrain_seconds, 2),
        "predict_stage_seconds": round(predict_seconds, 3),
        "predict_rows_written": predicted["rows_written"],
    }


if __name__ == "__main__":
    raise SystemExit(main())
