"""Ingestion benchmark: 500 symbols x 5 years of synthetic bars into a fresh embedded database.

Prints one JSON object:

* ``rows``, ``seconds``, ``rows_per_second``: the first, incremental
  ingestion of the whole range into an empty ``raw.bars`` (the fast path:
  binary COPY straight into the table), timed end to end (generating the
  bars, reference data and corporate actions, and the load).
* ``second_provider``: the same rows under another provider name, into the
  table that now holds the first load (bigger indexes).
* ``upsert``: a refresh of the same range after 1 % of the bars were
  corrected at the source (the upsert path: COPY into a temporary table,
  then INSERT ... ON CONFLICT, the trigger keeping the old versions).
* ``rerun``: the same date again (nothing missing: nothing fetched).

Uses its own throwaway QUANT_HOME (removed at the end).

Run: ``.venv/bin/python bench/ingest.py [--symbols 500] [--years 5]``
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from _scratch import bench_home, bench_parser, count_rows, migrated_history, print_figures


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--corrected-share", type=float, default=0.01)
    args = parser.parse_args()

    with bench_home("qbench-ingest-") as home:
        return _run(args, home)


class _Corrected:
    """The synthetic market with a share of its bars revised (close and high raised 1 %)."""

    def __init__(self, inner, share: float) -> None:
        self.inner = inner
        self.name = inner.name
        self.share = share

    def bars(self, start, end, symbols=None):
        bars = self.inner.bars(start, end, symbols)
        rng = np.random.default_rng(0)
        pick = rng.random(len(bars)) < self.share
        bars = bars.copy()
        bars.loc[pick, "close"] = bars.loc[pick, "close"] * 1.01
        bars.loc[pick, "high"] = np.maximum(bars.loc[pick, "high"], bars.loc[pick, "close"])
        return bars

    def symbols(self, as_of=None):
        return self.inner.symbols(as_of)

    def corporate_actions(self, start, end, symbols=None):
        return self.inner.corporate_actions(start, end, symbols)


def _run(args: argparse.Namespace, home: Path) -> int:
    from quant.data import SyntheticProvider, ingest_bars

    history = migrated_history(home, args.end, args.years)
    settings, cal, start, end = history.settings, history.calendar, history.start, history.end

    provider = SyntheticProvider(symbols=args.symbols, exchange=settings.exchange)
    provider.bars(start, start)  # build the calendar and universe outside the timing

    t0 = time.perf_counter()
    first = ingest_bars(
        end, provider=SyntheticProvider(symbols=args.symbols), start=start, settings=settings
    )
    seconds = time.perf_counter() - t0

    # the same rows again under a second provider name, into the now non-empty table
    bars = SyntheticProvider(symbols=args.symbols).bars(start, end)

    class _Renamed(_Corrected):
        def bars(self, start, end, symbols=None):
            return bars

    renamed = _Renamed(SyntheticProvider(symbols=args.symbols), 0.0)
    renamed.name = "bench_load"
    t0 = time.perf_counter()
    load = ingest_bars(end, provider=renamed, start=start, settings=settings)
    load_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    rerun = ingest_bars(
        end, provider=SyntheticProvider(symbols=args.symbols), start=start, settings=settings
    )
    rerun_seconds = time.perf_counter() - t0

    corrected = _Corrected(SyntheticProvider(symbols=args.symbols), args.corrected_share)
    t0 = time.perf_counter()
    upsert = ingest_bars(end, provider=corrected, start=start, settings=settings, refresh=True)
    upsert_seconds = time.perf_counter() - t0

    revisions = count_rows(settings, ["raw.bar_revisions"])["raw.bar_revisions"]

    out = {
        "benchmark": "ingest",
        "symbols": args.symbols,
        "sessions": len(cal.sessions(start, end)),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "cpus": os.cpu_count(),
        "rows": first.rows_inserted,
        "seconds": round(seconds, 3),
        "rows_per_second": round(first.rows_inserted / seconds),
        "second_provider": {
            "rows": load.rows_inserted,
            "seconds": round(load_seconds, 3),
            "rows_per_second": round(load.rows_inserted / load_seconds),
        },
        "rerun": {
            "sessions_fetched": rerun.sessions_fetched,
            "rows_changed": rerun.rows_changed,
            "seconds": round(rerun_seconds, 3),
        },
        "upsert": {
            "rows": upsert.rows_received,
            "rows_updated": upsert.rows_updated,
            "revisions_kept": revisions,
            "seconds": round(upsert_seconds, 3),
            "rows_per_second": round(upsert.rows_received / upsert_seconds),
        },
        "goal_rows_per_second": 200_000,
    }
    return print_figures(out)


if __name__ == "__main__":
    raise SystemExit(main())
