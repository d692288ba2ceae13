"""dbt benchmark: a full build of the project over 500 symbols x 5 years of synthetic bars.

Prints one JSON object:

* ``bars``: rows in raw.bars (one provider).
* ``full_build_seconds``: ``dbt build --full-refresh`` as of the last session
  (every model over the whole history, and every test), in-process through
  ``quant.transform.run_dbt``.
* ``full_run_seconds``: ``dbt run --full-refresh`` (the models only) right after.
* ``incremental_build_seconds``: ``dbt build`` as of the next session (the daily
  case: models rebuild their last sessions, all tests run).
* ``rows``: rows of the marts.

Goal: a full build under 120 s on a 2-core machine. Uses its own throwaway
QUANT_HOME (removed at the end).

Run: ``.venv/bin/python bench/dbt_build.py [--symbols 500] [--years 5]``
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import date
from pathlib import Path

from _scratch import bench_home, bench_parser, count_rows, migrated_history, print_figures


def main() -> int:
    args = bench_parser(__doc__).parse_args()
    with bench_home("qbench-dbt-") as home:
        return _run(args, home)


def _run(args: argparse.Namespace, home: Path) -> int:
    from quant.data import SyntheticProvider, ingest_bars
    from quant.transform import dbt_vars, run_dbt

    history = migrated_history(home, args.end, args.years)
    settings, cal, start, end = history.settings, history.calendar, history.start, history.end
    following = cal.next_session(end)
    provider = SyntheticProvider(symbols=args.symbols, exchange=settings.exchange)
    ingest_bars(following, provider=provider, start=start, settings=settings)

    def timed(command: list[str], session: date) -> float:
        t0 = time.perf_counter()
        run_dbt(command, settings=settings, vars=dbt_vars(session, settings))
        return time.perf_counter() - t0

    full_build = timed(["build", "--quiet", "--full-refresh"], end)
    full_run = timed(["run", "--quiet", "--full-refresh"], end)
    incremental = timed(["build", "--quiet"], following)

    counts = count_rows(settings, ("raw.bars", "marts.universe", "marts.features", "marts.labels"))
    out = {
        "benchmark": "dbt_build",
        "symbols": args.symbols,
        "sessions": len(cal.sessions(start, following)),
        "bars": counts.pop("raw.bars"),
        "full_build_seconds": round(full_build, 2),
        "full_run_seconds": round(full_run, 2),
        "incremental_build_seconds": round(incremental, 2),
        "rows": counts,
        "goal_seconds": 120,
        "meets_goal": full_build < 120,
        "cpu_count": os.cpu_count(),
    }
    return print_figures(out)


if __name__ == "__main__":
    raise SystemExit(main())
