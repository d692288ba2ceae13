"""Read-only relations held in memory for a run over many sessions (a backtest).

The daily stages read the dbt marts a session at a time. A backtest calls
them for every session of a range, and reading the same rows from
PostgreSQL over and over is most of its time. A :class:`RelationCache`
loads each relation once for the whole range; while it is active
(:func:`cached_relations`), the loaders that know it (``quant.model``'s
and ``quant.portfolio``'s) take their rows from it instead of the
database and give the same frames they would have read.

Only relations nobody writes during the run may be cached: the dbt marts
after the build, never ``ops.*``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CachedRelation", "RelationCache", "active_cache", "cached_relations"]

_ACTIVE: ContextVar[RelationCache | None] = ContextVar("quant_relation_cache", default=None)


def _identifier(relation: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in relation.split(".", 1))


@dataclass(frozen=True)
class CachedRelation:
    """Every row of one relation dated in ``[start, end]``, sorted by session and symbol.

    ``frame`` has ``session_date`` as datetime64 and the relation's other
    columns as PostgreSQL's CSV output reads with pandas (numbers as float or
    int, text as str, booleans as bool or object when nullable).
    """

    relation: str
    start: date
    end: date
    frame: pd.DataFrame
    dates: np.ndarray
    """``frame``'s session dates as datetime64[ns], for slicing by range."""

    def covers(self, start: date, end: date) -> bool:
        """True when every row dated in ``[start, end]`` is in the cache."""
        return self.start <= start and end <= self.end

    def rows(self, start: date, end: date) -> pd.DataFrame:
        """The rows dated in ``[start, end]`` (a slice of ``frame``; copy before changing it)."""
        lo = np.searchsorted(self.dates, np.datetime64(start, "ns"), side="left")
        hi = np.searchsorted(self.dates, np.datetime64(end, "ns"), side="right")
        return self.frame.iloc[lo:hi]

    def session_dates(self) -> np.ndarray:
        """The distinct session dates held, ascending (datetime64[ns])."""
        return np.unique(self.dates)


class RelationCache:
    """Relations loaded once for a range of sessions; see the module docstring."""

    def __init__(self) -> None:
        self._relations: dict[str, CachedRelation] = {}

    def load(
        self,
        conn: Any,
        relation: str,
        start: date,
        end: date,
        *,
        columns: Sequence[str] | None = None,
    ) -> CachedRelation:
        """Read ``relation``'s rows dated in ``[start, end]`` (all columns, or ``columns``).

        The relation must have ``session_date`` and ``symbol`` columns. A
        relation loaded before is replaced.
        """
        selected = "*" if columns is None else ", ".join(
            dict.fromkeys(["session_date", "symbol", *columns])
        )
        with conn.cursor() as cur:
            query = cur.mogrify(
                f"select {selected} from {_identifier(relation)} "
                "where session_date between %s and %s order by session_date, symbol",
                (start, end),
            ).decode()
            buffer = io.StringIO()
            cur.copy_expert(f"copy ({query}) to stdout with (format csv, header true)", buffer)
        buffer.seek(0)
        frame = pd.read_csv(buffer, dtype={"symbol": str}, keep_default_na=False, na_values=[""])
        for name in frame.columns:
            if frame[name].dtype == object and name != "symbol":
                values = set(frame[name].dropna().unique())
                if values and values <= {"t", "f"}:
                    frame[name] = frame[name].map({"t": True, "f": False})
        frame["session_date"] = pd.to_datetime(frame["session_date"])
        cached = CachedRelation(
            relation=relation,
            start=start,
            end=end,
            frame=frame,
            dates=frame["session_date"].to_numpy(dtype="datetime64[ns]"),
        )
        self._relations[relation] = cached
        return cached

    def get(self, relation: str) -> CachedRelation | None:
        """The cached relation, or None."""
        return self._relations.get(relation)

    def rows(self, relation: str, start: date, end: date) -> pd.DataFrame | None:
        """``relation``'s rows dated in ``[start, end]``, or None when not cached for the range."""
        cached = self._relations.get(relation)
        if cached is None or not cached.covers(start, end):
            return None
        return cached.rows(start, end)


def active_cache() -> RelationCache | None:
    """The cache the current context reads relations from, or None."""
    return _ACTIVE.get()


@contextmanager
def cached_relations(cache: RelationCache) -> Iterator[RelationCache]:
    """Make ``cache`` the one loaders read from inside the ``with`` block."""
    token = _ACTIVE.set(cache)
    try:
        yield cache
    finally:
        _ACTIVE.reset(token)
