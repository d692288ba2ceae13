"""Read-only relations held in memory for a run over many sessions (a backtest).

The daily stages read the dbt marts a session at a time. A backtest calls
them for every session of a range, and reading the same rows from
PostgreSQL over and over is most of its time. A :class:`RelationCache`
loads each relation once for the whole range; the run context carries it
(:attr:`quant.pipeline.RunContext.relations`), and the loaders that take it
(``quant.model``'s, ``quant.portfolio``'s and ``quant.execution``'s market
inputs, ``cache=``) take their rows from it instead of the database and give
the same frames they would have read.

Only relations nobody writes during the run may be cached: the dbt marts
after the build, never ``ops.*``.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CachedRelation",
    "RelationCache",
    "quote_identifier",
]

_TEXT = ("text", "character varying", "character")
_CHUNK = timedelta(days=120)


def _column_types(conn: Any, relation: str) -> dict[str, str]:
    """Column name -> PostgreSQL data type of ``relation`` (a table or a view), in order."""
    schema, table = relation.split(".", 1)
    with conn.cursor() as cur:
        cur.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = %s and table_name = %s order by ordinal_position",
            (schema, table),
        )
        types = dict(cur.fetchall())
    if not types:
        raise LookupError(f"{relation} does not exist: build the dbt models first")
    return types


def quote_identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier (``"a""b"`` for ``a"b``)."""
    return '"' + name.replace('"', '""') + '"'


def _identifier(relation: str) -> str:
    return ".".join(quote_identifier(part) for part in relation.split(".", 1))


@dataclass(frozen=True)
class CachedRelation:
    """Every row of one relation dated in ``[start, end]``, sorted by session and symbol.

    ``frame`` has the relation's columns as pandas reads PostgreSQL's CSV
    output (numbers as float or int, text as str), except that booleans are
    bool (object with NaN when nullable) and dates and timestamps
    datetime64[ns].
    """

    relation: str
    start: date
    end: date
    frame: pd.DataFrame
    dates: np.ndarray
    """``frame``'s session dates as datetime64[ns], for slicing by range."""
    all_columns: bool = True
    """Every column of the relation was read (not only some)."""

    def covers(self, start: date, end: date) -> bool:
        """True when every row dated in ``[start, end]`` is in the cache."""
        return self.start <= start and end <= self.end

    def rows(self, start: date, end: date) -> pd.DataFrame:
        """The rows dated in ``[start, end]`` (a slice of ``frame``; copy before changing it)."""
        lo = np.searchsorted(self.dates, np.datetime64(start, "ns"), side="left")
        hi = np.searchsorted(self.dates, np.datetime64(end, "ns"), side="right")
        return self.frame.iloc[lo:hi]

    @functools.cached_property
    def _distinct_dates(self) -> np.ndarray:
        return np.unique(self.dates)

    def session_dates(self) -> np.ndarray:
        """The distinct session dates held, ascending (datetime64[ns]); found once."""
        return self._distinct_dates


class RelationCache:
    """Relations loaded once for a range of sessions; see the module docstring."""

    def __init__(self) -> None:
        self._relations: dict[str, CachedRelation] = {}
        self._derived: dict[Hashable, Any] = {}

    def remember(self, key: Hashable, value: Any) -> None:
        """Keep a table derived from cached data (e.g. a rolling mean per session) under ``key``."""
        self._derived[key] = value

    def recall(self, key: Hashable) -> Any | None:
        """What :meth:`remember` kept under ``key``, or None."""
        return self._derived.get(key)

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

        The relation must have ``session_date`` and ``symbol`` columns. When it
        was loaded before, the result holds the union of both ranges and both
        column sets (nothing is read again when the earlier load covers this one).
        """
        held = self._relations.get(relation)
        if held is not None:
            held_columns = set(held.frame.columns)
            if held.covers(start, end) and (
                columns is None and held.all_columns or set(columns or ()) <= held_columns
            ):
                return held
            start, end = min(start, held.start), max(end, held.end)
            if columns is not None and not held.all_columns:
                columns = list(dict.fromkeys([*held.frame.columns, *columns]))
            else:
                columns = None
        types = _column_types(conn, relation)
        wanted = list(types) if columns is None else list(
            dict.fromkeys(["session_date", "symbol", *columns])
        )
        missing = [c for c in wanted if c not in types]
        if missing:
            raise KeyError(f"{relation} has no column {', '.join(missing)}")
        selected = ", ".join(quote_identifier(c) for c in wanted)
        text = [c for c in wanted if types[c] in _TEXT or types[c] == "boolean"]
        chunks = []
        with conn.cursor() as cur:
            # a few months a COPY: the CSV text of a whole range would take ten times the frame
            lo = start
            while lo <= end:
                hi = min(lo + _CHUNK - timedelta(days=1), end)
                query = cur.mogrify(
                    f"select {selected} from {_identifier(relation)} "
                    "where session_date between %s and %s order by session_date, symbol",
                    (lo, hi),
                ).decode()
                buffer = io.StringIO()
                cur.copy_expert(f"copy ({query}) to stdout with (format csv, header true)", buffer)
                buffer.seek(0)
                chunk = pd.read_csv(
                    buffer,
                    dtype=dict.fromkeys(text, str),
                    keep_default_na=False,
                    na_values={c: [""] for c in wanted},
                    low_memory=False,
                )
                del buffer
                if len(chunk) or not chunks:
                    chunks.append(chunk)
                lo = hi + timedelta(days=1)
        nonempty = [c for c in chunks if len(c)]
        if len(nonempty) > 1:
            frame = pd.concat(nonempty, ignore_index=True)
        else:
            frame = nonempty[0] if nonempty else chunks[0]
        for name in wanted:
            kind = types[name]
            if kind == "boolean":
                frame[name] = frame[name].map({"t": True, "f": False})
            elif kind in ("date", "timestamp without time zone", "timestamp with time zone"):
                frame[name] = pd.to_datetime(frame[name]).dt.as_unit("ns")
        cached = CachedRelation(
            relation=relation,
            start=start,
            end=end,
            frame=frame,
            dates=frame["session_date"].to_numpy(dtype="datetime64[ns]"),
            all_columns=columns is None,
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

