"""Backtest benchmark: 500 symbols over 5 years with weekly retraining, through ``quant backtest``.

Runs :func:`quant.backtest.run_backtest` (ingestion, one dbt build, then each
session's retrain when due, predict, optimise, orders, checks and simulator
fills, for the strategy and both baselines) on the synthetic market in a
throwaway QUANT_HOME (its own embedded PostgreSQL, removed at the end), and
prints one JSON object:

* ``wall_s``: the whole backtest, ingestion and dbt included; ``prepare_s``
  ingestion plus the dbt build; ``stage_s`` the time per stage, summed;
* ``session_s``: mean wall time of a session without a retrain and
  ``retrain_session_s`` of one with it (weekly: the first session of each
  ISO week, and the first session, which has no champion yet);
  ``retrains_by_reason`` what the retrain stage did; ``model_selection``
  the promotions by reason, the retrains not promoted and their seconds, and
  ``drift_fired_share``, the share of sessions whose (calibrated) drift was
  above the threshold (the check: under 10 % on the synthetic market);
  ``ic_decay`` the tradeable IC, rank IC and ICIR at 1, 5, 10, 20 sessions.
  The drift trigger runs with the model's settings unless
  ``--drift-threshold`` is given (a large value turns it off);
* ``data_quality``: the sessions that ran the full data-quality gate (the
  range's screen flagged them), those that failed it and the failed warnings
  by check; the run demotes ``raw_bars.no_unexplained_jump`` to a warning (the
  synthetic market's fat tails trip it on about one session in ten at 500
  names) and records any other failure and goes on;
* ``turnover`` (one-way, per year) and ``costs_usd`` (commission, modelled
  costs, slippage against the auction price) of the strategy;
* ``peak_rss_mb``: the process's peak resident memory
  (``resource.getrusage``: dbt and LightGBM run in this process);
  ``peak_rss_baselines_mb`` the largest of its child processes' (the
  baselines' process);
* with ``--sessions`` below the full range (a scaled run): ``estimated_full_s``,
  the full range extrapolated as prepare (scaled by the sessions of data) +
  sessions without retrain x ``session_s`` + retrain sessions x
  ``retrain_session_s``, and ``scaled: true``.

The model is sized for research (``--train-window 252``, ``--validation-folds
1``, ``--boost-rounds 100``, ``--bin-sample-rows 20000``: one year of training
data, one validation fold, histogram bins placed on a sample of rows);
the production defaults (five years, four folds, 400 rounds) take about a
minute per retrain at 500 symbols. ``sessions_s`` is the wall time after the
preparation (the session loop, both processes, and the results).

``--history`` sets the sessions of data before the first session (default:
the model's training window plus its horizon and 60 sessions of feature
warm-up, so that every retrain trains on a full window, as late in a 5-year
backtest). Goal: the full 5 years under 10 minutes on this machine.

Run: ``.venv/bin/python bench/backtest.py [--symbols 500] [--years 5] [--sessions N]``
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from typing import Any

from _scratch import bench_home, bench_parser, print_figures

GOAL_S = 600.0


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--sessions", type=int, default=None,
                        help="run only this many sessions and extrapolate to the full range")
    parser.add_argument("--history", type=int, default=None,
                        help="sessions of data before the first session")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--drift-threshold", type=float, default=None,
                        help="QUANT_MODEL__DRIFT_THRESHOLD (default: the model's setting)")
    parser.add_argument("--train-window", type=int, default=252,
                        help="QUANT_MODEL__TRAIN_WINDOW_SESSIONS of the research model")
    parser.add_argument("--validation-folds", type=int, default=1,
                        help="QUANT_MODEL__VALIDATION_FOLDS of the research model")
    parser.add_argument("--boost-rounds", type=int, default=100,
                        help="QUANT_MODEL__NUM_BOOST_ROUND of the research model")
    parser.add_argument("--bin-sample-rows", type=int, default=20_000,
                        help="QUANT_MODEL__BIN_SAMPLE_ROWS of the research model")
    args = parser.parse_args(argv)
    full_sessions = 252 * args.years
    sessions = min(args.sessions or full_sessions, full_sessions)
    drift = {} if args.drift_threshold is None else {
        "QUANT_MODEL__DRIFT_THRESHOLD": str(args.drift_threshold)
    }
    with bench_home(
        "qbench-backtest-",
        None,
        # as the pipeline benchmark: the synthetic market's fat tails fail the jump check on
        # about one session in ten at 500 names, a correct stop that is not a timing
        QUANT_QUALITY__WARN_ONLY='["raw_bars.no_unexplained_jump"]',
        QUANT_SYNTHETIC__SYMBOLS=str(args.symbols),
        QUANT_MODEL__RETRAIN_SCHEDULE="weekly",
        **drift,
        QUANT_MODEL__TRAIN_WINDOW_SESSIONS=str(args.train_window),
        QUANT_MODEL__VALIDATION_FOLDS=str(args.validation_folds),
        QUANT_MODEL__NUM_BOOST_ROUND=str(args.boost_rounds),
        QUANT_MODEL__BIN_SAMPLE_ROWS=str(args.bin_sample_rows),
    ):
        from quant.config import load_settings

        model = load_settings().model
        history = args.history or model.train_window_sessions + model.horizon_sessions + 60
        os.environ["QUANT_HISTORY_SESSIONS"] = str(history)
        saved = os.dup(1)
        os.dup2(2, 1)  # dbt and LightGBM print to stdout: keep it for the JSON
        try:
            figures = run(args, sessions, full_sessions, history)
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
    return print_figures(figures)


def run(args: argparse.Namespace, sessions: int, full_sessions: int, history: int) -> dict[str, Any]:
    from quant.backtest import run_backtest
    from quant.calendar import get_calendar
    from quant.config import load_settings

    settings = load_settings()
    cal = get_calendar(settings.exchange)
    end = cal.previous_session(args.end) if not cal.is_session(args.end) else args.end
    start = cal.shift(end, -(sessions - 1))
    marks: list[float] = []

    def progress(done: int, total: int, what: str) -> None:
        marks.append(time.perf_counter())
        print(f"{done}/{total} {what} {time.strftime('%H:%M:%S')}", file=sys.stderr, flush=True)

    started = time.perf_counter()
    # a session that fails another check is recorded and the run goes on: a timing must
    # cover the range
    result = run_backtest(start, end, settings=settings, progress=progress,
                          baselines=not args.no_baselines, continue_on_quality_failure=True)
    wall = time.perf_counter() - started
    figs = result.figures()
    days = result.sessions
    # marks: [before prepare, after prepare, after session 1, ..., after session n]
    per_session = [b - a for a, b in zip(marks[1:-1], marks[2:], strict=True)]
    trained = set(result.retrains.loc[result.retrains["action"] == "retrained", "session"])
    due = [d in trained for d in days]
    plain = [s for s, d in zip(per_session, due, strict=True) if not d]
    retrain = [s for s, d in zip(per_session, due, strict=True) if d]
    session_s = sum(plain) / len(plain) if plain else None
    retrain_s = sum(retrain) / len(retrain) if retrain else session_s
    prepare_s = marks[1] - marks[0]
    figures: dict[str, Any] = {
        "symbols": args.symbols,
        "sessions": len(days),
        "start": days[0].isoformat(),
        "end": days[-1].isoformat(),
        "history_sessions": history,
        "baselines": not args.no_baselines,
        "retrain_sessions": sum(due),
        "retrains_by_reason": figs["retrains"],
        "model_selection": figs["model_selection"],
        "ic_decay": figs["ic_decay"],
        "drift_threshold": settings.model.drift_threshold,
        "drift_calibration": settings.model.drift_calibration,
        "model": {
            "train_window_sessions": settings.model.train_window_sessions,
            "validation_folds": settings.model.validation_folds,
            "num_boost_round": settings.model.num_boost_round,
            "bin_sample_rows": settings.model.bin_sample_rows,
            "num_threads": settings.model.num_threads,
        },
        "optimizer": result.optimizer,
        "wall_s": round(wall, 1),
        "prepare_s": round(prepare_s, 1),
        "sessions_s": round(wall - prepare_s, 1),
        "session_s": None if session_s is None else round(session_s, 2),
        "retrain_session_s": None if retrain_s is None else round(retrain_s, 2),
        "stage_s": {k: round(v, 1) for k, v in result.stage_seconds.items()},
        "data_quality": {
            "gated_sessions": result.gated_sessions,
            "failed_sessions": len(figs["data_quality_failures"]),
            "warnings": result.quality_warnings,
        },
        "turnover": figs["turnover"],
        "costs_usd": {k: figs.get(k) for k in
                      ("commission_usd", "accounting_costs_usd", "slippage_usd")},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_baselines_mb": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        ),
        "orders": int(len(result.strategy.orders)),
        "sharpe": figs["sharpe"],
        "goal_s": GOAL_S,
        "scaled": len(days) < full_sessions,
    }
    if len(days) < full_sessions and session_s is not None:
        if settings.model.drift_threshold >= 1e6:  # calendar retrains only: count them
            from quant.model import schedule_due

            full_days = cal.sessions(cal.shift(end, -(full_sessions - 1)), end)
            full_retrains = 1 + sum(schedule_due(d, "weekly", settings.exchange)
                                    for d in full_days[1:])
        else:  # drift retrains too: at the rate seen
            full_retrains = 1 + round((full_sessions - 1) * sum(due[1:]) / max(len(days) - 1, 1))
        estimate = (
            prepare_s * (full_sessions + history) / (len(days) + history)
            + (full_sessions - full_retrains) * session_s
            + full_retrains * (retrain_s or session_s)
        )
        figures |= {"full_sessions": full_sessions, "full_retrains": full_retrains,
                    "estimated_full_s": round(estimate, 0),
                    "meets_goal": estimate < GOAL_S}
    else:
        figures["meets_goal"] = wall < GOAL_S
    return figures


if __name__ == "__main__":
    sys.exit(main())
