"""What the benchmarks share: their common options, the scratch home they run in, the
range of sessions they measure, the row counts they report and how they print figures.

The scripts run as ``.venv/bin/python bench/<name>.py``, so this folder is on
``sys.path`` and they ``import _scratch``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from quant.db import scratch_environment, scratch_home

__all__ = [
    "DEFAULT_END",
    "History",
    "bench_home",
    "bench_parser",
    "count_rows",
    "migrated_history",
    "print_figures",
]

DEFAULT_END = date(2025, 11, 20)
"""The last date the benchmarks measure up to unless ``--end`` says otherwise."""


def bench_parser(doc: str, *, years: bool = True) -> argparse.ArgumentParser:
    """A parser with the options every benchmark of a synthetic market takes:
    ``--symbols`` (500), ``--years`` (5; unless ``years`` is false) and ``--end``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    if years:
        parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--end", type=date.fromisoformat, default=DEFAULT_END)
    return parser


@contextmanager
def bench_home(prefix: str, home: Path | None = None, **extra: str) -> Iterator[Path]:
    """The QUANT_HOME a benchmark runs in.

    Without ``home``: a throwaway one (:func:`quant.db.scratch_home`), its
    embedded PostgreSQL stopped and its folder removed at the end. With ``home``
    (one with built marts, say): that one, with the same scratch environment for the
    block, left as it was found.
    """
    if home is None:
        with scratch_home(prefix, **extra) as scratch:
            yield scratch
        return
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(scratch_environment(home, **extra))
    try:
        yield home
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass(frozen=True)
class History:
    """The settings of a migrated scratch home and the sessions a benchmark covers."""

    settings: Any
    calendar: Any
    start: date
    end: date


def migrated_history(home: Path, end: date, years: int, **settings: Any) -> History:
    """Settings of ``home`` (with ``settings`` overrides), its database migrated, and
    the sessions from about ``years`` years before ``end`` to the session on or before it."""
    from quant.calendar import get_calendar
    from quant.config import load_settings
    from quant.db import migrate

    loaded = load_settings(home=home, **settings)
    migrate(loaded)
    cal = get_calendar(loaded.exchange)
    last = cal.session_on_or_before(end)
    first = cal.session_on_or_before(date(last.year - years, last.month, last.day))
    return History(settings=loaded, calendar=cal, start=first, end=last)


def count_rows(settings: Any, tables: Iterable[str]) -> dict[str, int]:
    """Rows of each table (schema-qualified names of our own, never user input)."""
    from quant.db import connect

    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            counts = {}
            for table in tables:
                cur.execute(f"select count(*) from {table}")
                counts[table] = cur.fetchone()[0]
            return counts
    finally:
        conn.close()


def print_figures(figures: dict[str, Any], *, indent: int | None = None) -> int:
    """Print the figures as one JSON object on stdout; the exit status 0."""
    json.dump(figures, sys.stdout, indent=indent)
    sys.stdout.write("\n")
    return 0
