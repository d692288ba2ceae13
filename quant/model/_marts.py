"""Reading the feature, label and universe marts from PostgreSQL, point in time.

When the caller passes a :class:`quant.db.RelationCache` (``cache=``, the run
context's relations) that holds a mart for the requested range, the loaders take its rows from
the cache and return the frame the query would have returned (same
columns, dtypes, row order and values); otherwise they query PostgreSQL.
:func:`cache_model_inputs` loads what the model stages read for a range of
sessions.
"""

from __future__ import annotations

import io
import weakref
from collections.abc import Callable, Hashable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from quant.db import (
    CachedRelation,
    RelationCache,
    quote_identifier,
)
from quant.exceptions import TrainingDataError
from quant.model._train import KEY_COLUMNS, label_columns

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

    from quant.config import Settings

__all__ = [
    "cache_model_inputs",
    "feature_columns",
    "history_start",
    "load_features",
    "load_labels",
    "load_universe",
]

FEATURES = "features"
LABELS = "labels"
UNIVERSE = "universe"

_NUMERIC_TYPES = ("double precision", "real", "numeric", "integer", "bigint", "smallint")


def _table(schema: str, name: str) -> str:
    return f"{quote_identifier(schema)}.{quote_identifier(name)}"


def _relation(schema: str, name: str) -> str:
    """The name a :class:`~quant.db.RelationCache` holds a mart under."""
    return f"{schema}.{name}"


# --- the cache ------------------------------------------------------------------------

_DERIVED: dict[int, dict[Hashable, Any]] = {}
"""Values computed once per cached relation (keyed by the relation object's id)."""


def _derived(held: CachedRelation, key: Hashable, compute: Callable[[], Any]) -> Any:
    """``compute()`` for ``held``, computed once while ``held`` lives."""
    entry = _DERIVED.get(id(held))
    if entry is None:
        entry = _DERIVED[id(held)] = {}
        weakref.finalize(held, _DERIVED.pop, id(held), None)
    if key not in entry:
        entry[key] = compute()
    return entry[key]


def _held(relation: str, cache: RelationCache | None) -> CachedRelation | None:
    return None if cache is None else cache.get(relation)


def _held_for(
    relation: str, start: date, end: date, cache: RelationCache | None
) -> CachedRelation | None:
    """``cache``'s copy of ``relation`` when it holds every row dated in the range."""
    held = _held(relation, cache)
    return held if held is not None and held.covers(start, end) else None


def _bounds(held: CachedRelation, start: date, end: date) -> tuple[int, int]:
    lo = int(np.searchsorted(held.dates, np.datetime64(start, "ns"), side="left"))
    hi = int(np.searchsorted(held.dates, np.datetime64(end, "ns"), side="right"))
    return lo, hi


_DATE_DTYPE: Any = None


def _date_dtype() -> Any:
    """The dtype ``pd.to_datetime`` gives the dates of PostgreSQL's CSV output (the SQL path)."""
    global _DATE_DTYPE
    if _DATE_DTYPE is None:
        _DATE_DTYPE = pd.to_datetime(pd.Series(["2000-01-03"], dtype=str)).dtype
    return _DATE_DTYPE


def _as_dates(values: pd.Series) -> pd.Series:
    """Cached dates (datetime64 of any unit, or ISO text) as the SQL path types them."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values.astype(_date_dtype())
    return pd.to_datetime(values)


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    """The frame the SQL path reads from a CSV with a header and no row."""
    header = ",".join('"' + c.replace('"', '""') + '"' for c in columns)  # CSV quoting
    return _read_csv(io.StringIO(header + "\n"))


def _is_tradable(values: pd.Series) -> np.ndarray:
    """``is_tradable`` as SQL's ``where is_tradable`` reads it (null is not true)."""
    if values.dtype == bool:
        return values.to_numpy()
    return (values == True).to_numpy(dtype=bool)  # noqa: E712 (object column: True/False/NaN)


def _tradable_rows(features: CachedRelation, universe: CachedRelation) -> np.ndarray:
    """Per row of ``features``: whether ``universe`` has a tradable row for its name and date."""
    rows = universe.frame
    tradable = _is_tradable(rows["is_tradable"])
    codes, _ = pd.factorize(
        pd.concat([features.frame["symbol"], rows["symbol"]], ignore_index=True), sort=False
    )
    width = int(codes.max()) + 1 if codes.size else 1
    n = len(features.frame)
    day = np.timedelta64(1, "D")
    f_key = (features.dates - np.datetime64("1970-01-01", "ns")) // day * width + codes[:n]
    u_key = (universe.dates - np.datetime64("1970-01-01", "ns")) // day * width + codes[n:]
    return np.isin(f_key, u_key[tradable])


def _cached_features(
    start: date,
    end: date,
    columns: Sequence[str],
    symbols: Sequence[str] | None,
    schema: str,
    cache: RelationCache | None,
) -> pd.DataFrame | None:
    source = cached_feature_source(start, end, schema, cache=cache)
    if source is None:
        return None
    features, universe = source
    wanted = ["symbol", "session_date", *columns]
    held = features.frame
    if any(c not in held.columns for c in wanted):
        return None
    dtypes = _derived(features, "dtypes", lambda: held.dtypes.to_dict())
    if not all(_plain_number(dtypes[c]) for c in columns):
        return None  # text or booleans: PostgreSQL's reading (and its errors) decide
    memo = _derived(features, "tradable", dict)
    if memo.get("universe") is None or memo["universe"]() is not universe:
        memo["universe"] = weakref.ref(universe)
        memo["mask"] = _tradable_rows(features, universe)
    mask = memo["mask"]
    lo, hi = _bounds(features, start, end)
    positions = np.flatnonzero(mask[lo:hi]) + lo
    if symbols is not None:
        names = _derived(features, "symbol_objects", lambda: held["symbol"].to_numpy(dtype=object))
        chosen = set(symbols)
        keep = np.fromiter((n in chosen for n in names[positions]), dtype=bool, count=positions.size)
        positions = positions[keep]
    if positions.size == 0:
        return _feature_types(_empty(wanted), columns)
    matrix = np.empty((positions.size, len(columns)), dtype=np.float64, order="F")
    for j, name in enumerate(columns):
        values = _derived(features, ("float64", name), lambda n=name: held[n].to_numpy(dtype=float))
        matrix[:, j] = values[positions]
    frame = pd.DataFrame(matrix, columns=list(columns), copy=False)
    frame.insert(0, "session_date", pd.Series(features.dates[positions]).astype(_date_dtype()))
    frame.insert(0, "symbol", held["symbol"].take(positions).reset_index(drop=True))
    return frame


def _plain_number(dtype: Any) -> bool:
    """int or float numpy dtype (what PostgreSQL's numbers read as), not bool."""
    return isinstance(dtype, np.dtype) and dtype.kind in "iuf"


def _cached_labels(
    start: date, end: date, ret_col: str, end_col: str, schema: str, cache: RelationCache | None
) -> pd.DataFrame | None:
    labels = _held_for(_relation(schema, LABELS), start, end, cache)
    if labels is None:
        return None
    wanted = ["symbol", "session_date", ret_col, end_col]
    if any(c not in labels.frame.columns for c in wanted):
        return None
    lo, hi = _bounds(labels, start, end)
    rows = labels.frame.iloc[lo:hi]
    ends = rows[end_col]
    if pd.api.types.is_datetime64_any_dtype(ends.dtype):
        known = ends.notna() & (ends <= pd.Timestamp(end))
    elif pd.api.types.is_string_dtype(ends.dtype):
        known = ends.notna() & (ends <= end.isoformat())  # ISO dates sort as text
    else:
        return None  # no end date in the cached range (read as numbers): let SQL answer
    keep = (known & rows[ret_col].notna()).to_numpy(dtype=bool)
    at = [labels.frame.columns.get_loc(c) for c in wanted]
    if not keep.any():
        return _label_types(_empty(wanted), ret_col, end_col)
    frame = labels.frame.iloc[np.flatnonzero(keep) + lo, at].reset_index(drop=True)
    frame["session_date"] = _as_dates(frame["session_date"])
    frame[end_col] = _as_dates(frame[end_col])
    return _label_types(frame, ret_col, end_col, dates=False)


def _cached_history_start(
    session: date, sessions: int, schema: str, cache: RelationCache | None
) -> date | None:
    features = _held(_relation(schema, FEATURES), cache)
    if features is None or session > features.end:
        return None
    dates = _derived(features, "session_dates", features.session_dates)
    known = int(np.searchsorted(dates, np.datetime64(session, "ns"), side="right"))
    if sessions < 1 or known < sessions:
        return None  # sessions before the cached range may be among the last ``sessions``
    return pd.Timestamp(dates[known - sessions]).date()


def cached_feature_sessions(
    start: date, end: date, schema: str = "marts", *, cache: RelationCache | None
) -> np.ndarray | None:
    """Sessions of ``cache``'s feature mart in ``[start, end]`` when it serves that range.

    ``None`` when :func:`load_features` over the range would read
    PostgreSQL. The identity of the cached relations is part of the answer
    (``cached_feature_source``), so that a caller can keep per-session
    results for as long as the same cached rows are read.
    """
    source = cached_feature_source(start, end, schema, cache=cache)
    if source is None:
        return None
    features = source[0]
    dates = _derived(features, "session_dates", features.session_dates)
    lo = np.searchsorted(dates, np.datetime64(start, "ns"), side="left")
    hi = np.searchsorted(dates, np.datetime64(end, "ns"), side="right")
    return dates[lo:hi]


def cached_feature_source(
    start: date, end: date, schema: str = "marts", *, cache: RelationCache | None
) -> tuple[CachedRelation, CachedRelation] | None:
    """``cache``'s feature and universe marts :func:`load_features` reads for the range, or None."""
    features = _held_for(_relation(schema, FEATURES), start, end, cache)
    universe = _held_for(_relation(schema, UNIVERSE), start, end, cache)
    if features is None or universe is None or "is_tradable" not in universe.frame.columns:
        return None
    return features, universe


# --- the loaders -----------------------------------------------------------------------------


def feature_columns(
    conn: PgConnection, schema: str = "marts", *, cache: RelationCache | None = None
) -> list[str]:
    """Numeric columns of marts.features, in table order (the candidate model inputs).

    When ``cache`` holds the feature mart, the catalogue is read once for it
    (a cached relation does not change).

    Raises
    ------
    TrainingDataError
        The feature mart does not exist (dbt has not built it).
    """
    features = _held(_relation(schema, FEATURES), cache)
    if features is not None:
        return list(_derived(features, ("feature_columns", schema),
                             lambda: tuple(_feature_columns(conn, schema))))
    return _feature_columns(conn, schema)


def _feature_columns(conn: PgConnection, schema: str) -> list[str]:
    with conn.cursor() as cur:
        cur.execute(
            """
            select column_name, data_type from information_schema.columns
            where table_schema = %s and table_name = %s
            order by ordinal_position
            """,
            (schema, FEATURES),
        )
        rows = cur.fetchall()
    if not rows:
        raise TrainingDataError(f"{schema}.{FEATURES} does not exist: build the dbt marts first")
    return [c for c, t in rows if t in _NUMERIC_TYPES and c not in KEY_COLUMNS]


def _copy_frame(conn: PgConnection, query: str, params: Sequence) -> pd.DataFrame:
    with conn.cursor() as cur:
        sql = cur.mogrify(query, tuple(params)).decode()
        buffer = io.StringIO()
        cur.copy_expert(f"copy ({sql}) to stdout with (format csv, header true)", buffer)
    buffer.seek(0)
    return _read_csv(buffer)


def _read_csv(buffer: io.StringIO) -> pd.DataFrame:
    return pd.read_csv(buffer, dtype={"symbol": str}, keep_default_na=False, na_values=[""])


def _feature_types(frame: pd.DataFrame, columns: Sequence[str], *, dates: bool = True) -> pd.DataFrame:
    if dates:
        frame["session_date"] = pd.to_datetime(frame["session_date"])
    for name in columns:
        frame[name] = pd.to_numeric(frame[name], errors="raise").astype(float)
    return frame


def _label_types(
    frame: pd.DataFrame, ret_col: str, end_col: str, *, dates: bool = True
) -> pd.DataFrame:
    if dates:
        frame["session_date"] = pd.to_datetime(frame["session_date"])
        frame[end_col] = pd.to_datetime(frame[end_col])
    frame[ret_col] = frame[ret_col].astype(float)
    return frame


def history_start(
    conn: PgConnection,
    session: date,
    sessions: int,
    schema: str = "marts",
    *,
    cache: RelationCache | None = None,
) -> date | None:
    """First of the last ``sessions`` sessions of the feature mart up to ``session``."""
    cached = _cached_history_start(session, sessions, schema, cache)
    if cached is not None:
        return cached
    with conn.cursor() as cur:
        cur.execute(
            f"""
            select min(session_date) from (
                select distinct session_date from {_table(schema, FEATURES)}
                where session_date <= %s
                order by session_date desc
                limit %s
            ) recent
            """,
            (session, sessions),
        )
        return cur.fetchone()[0]


def load_features(
    conn: PgConnection,
    start: date,
    end: date,
    columns: Sequence[str],
    *,
    symbols: Sequence[str] | None = None,
    schema: str = "marts",
    cache: RelationCache | None = None,
) -> pd.DataFrame:
    """Feature rows of tradable names (the universe mart) dated in ``[start, end]``.

    Returns
    -------
    DataFrame
        ``symbol``, ``session_date`` (datetime64) and ``columns`` as float,
        sorted by session then symbol.
    """
    cached = _cached_features(start, end, columns, symbols, schema, cache)
    if cached is not None:
        return cached
    selected = ", ".join(f"f.{quote_identifier(c)}" for c in columns)
    query = f"""
        select f.symbol, f.session_date{", " + selected if selected else ""}
        from {_table(schema, FEATURES)} f
        join {_table(schema, UNIVERSE)} u on u.symbol = f.symbol and u.session_date = f.session_date
        where u.is_tradable and f.session_date between %s and %s
    """
    params: list = [start, end]
    if symbols is not None:
        query += " and f.symbol = any(%s)"
        params.append(list(symbols))
    query += " order by f.session_date, f.symbol"
    return _feature_types(_copy_frame(conn, query, params), columns)


def load_labels(
    conn: PgConnection,
    start: date,
    end: date,
    horizon_sessions: int,
    schema: str = "marts",
    *,
    cache: RelationCache | None = None,
) -> pd.DataFrame:
    """Labels of sessions in ``[start, end]`` whose horizon ended by ``end``.

    Raises
    ------
    TrainingDataError
        marts.labels has no column for the horizon.
    """
    ret_col, end_col = label_columns(horizon_sessions)
    cached = _cached_labels(start, end, ret_col, end_col, schema, cache)
    if cached is not None:
        return cached
    with conn.cursor() as cur:
        cur.execute(
            """
            select column_name from information_schema.columns
            where table_schema = %s and table_name = %s
            """,
            (schema, LABELS),
        )
        present = {r[0] for r in cur.fetchall()}
    if not present:
        raise TrainingDataError(f"{schema}.{LABELS} does not exist: build the dbt marts first")
    if ret_col not in present or end_col not in present:
        horizons = sorted(c for c in present if c.startswith("forward_return_"))
        raise TrainingDataError(
            f"{schema}.{LABELS} has no label for a {horizon_sessions}-session horizon; it has {horizons}"
        )
    query = f"""
        select symbol, session_date, {quote_identifier(ret_col)}, {quote_identifier(end_col)}
        from {_table(schema, LABELS)}
        where session_date between %s and %s
          and {quote_identifier(end_col)} <= %s
          and {quote_identifier(ret_col)} is not null
        order by session_date, symbol
    """
    return _label_types(_copy_frame(conn, query, [start, end, end]), ret_col, end_col)


def load_universe(
    conn: PgConnection, session: date, schema: str = "marts", *, cache: RelationCache | None = None
) -> list[str]:
    """Tradable symbols of the universe mart at ``session``, sorted."""
    universe = _held_for(_relation(schema, UNIVERSE), session, session, cache)
    if universe is not None and "is_tradable" in universe.frame.columns:
        rows = universe.rows(session, session)
        return [str(s) for s in rows["symbol"].to_numpy()[_is_tradable(rows["is_tradable"])]]
    with conn.cursor() as cur:
        cur.execute(
            f"select symbol from {_table(schema, UNIVERSE)} where session_date = %s and is_tradable "
            "order by symbol",
            (session,),
        )
        return [r[0] for r in cur.fetchall()]


def cache_model_inputs(
    conn: PgConnection,
    cache: RelationCache,
    start: date,
    end: date,
    settings: Settings | None = None,
) -> dict[str, tuple[date, date]]:
    """Load into ``cache`` the marts the model stages read for the sessions ``start..end``.

    The feature and universe marts (every column) and the horizon's label
    columns, from the first session of the longest look-back before
    ``start`` (training window plus horizon, or the drift window) to
    ``end``. The stages read it when their run context holds it
    (:attr:`quant.pipeline.RunContext.relations`).

    ``cache`` receives ``<schema>.features``, ``<schema>.universe`` and ``<schema>.labels``
    for the sessions ``start`` to ``end`` the stages will run for (``conn`` reads them
    only while loading); returns each relation's name and the ``(first, last)`` range loaded.

    Raises
    ------
    TrainingDataError
        The feature mart does not exist.
    """
    from quant.config import get_settings

    cfg = (settings or get_settings()).model
    schema = cfg.marts_schema
    feature_columns(conn, schema)  # fails with the model's message when the mart is missing
    lookback = max(cfg.train_window_sessions + cfg.horizon_sessions, cfg.drift_window_sessions)
    first = history_start(conn, start, lookback, schema) or start
    first = min(first, start)
    ret_col, end_col = label_columns(cfg.horizon_sessions)
    loaded: dict[str, tuple[date, date]] = {}
    for name, columns in ((FEATURES, None), (UNIVERSE, None), (LABELS, [ret_col, end_col])):
        relation = _relation(schema, name)
        held = cache.load(conn, relation, first, end, columns=columns)
        loaded[relation] = (held.start, held.end)
    feature_columns(conn, schema, cache=cache)  # the catalogue, read once for the cached mart
    return loaded
