"""Reading the feature, label and universe marts from PostgreSQL, point in time."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

import pandas as pd

from quant.exceptions import TrainingDataError
from quant.model._train import KEY_COLUMNS, label_columns

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

__all__ = [
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
    return f"{_quote(schema)}.{_quote(name)}"


def feature_columns(conn: PgConnection, schema: str = "marts") -> list[str]:
    """Numeric columns of marts.features, in table order (the candidate model inputs).

    Raises
    ------
    TrainingDataError
        The feature mart does not exist (dbt has not built it).
    """
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


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _copy_frame(conn: PgConnection, query: str, params: Sequence) -> pd.DataFrame:
    with conn.cursor() as cur:
        sql = cur.mogrify(query, tuple(params)).decode()
        buffer = io.StringIO()
        cur.copy_expert(f"copy ({sql}) to stdout with (format csv, header true)", buffer)
    buffer.seek(0)
    return pd.read_csv(buffer, dtype={"symbol": str}, keep_default_na=False, na_values=[""])


def history_start(
    conn: PgConnection, session: date, sessions: int, schema: str = "marts"
) -> date | None:
    """First of the last ``sessions`` sessions of the feature mart up to ``session``."""
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
) -> pd.DataFrame:
    """Feature rows of tradable names (the universe mart) dated in ``[start, end]``.

    Returns
    -------
    DataFrame
        ``symbol``, ``session_date`` (datetime64) and ``columns`` as float.
    """
    selected = ", ".join(f"f.{_quote(c)}" for c in columns)
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
    frame = _copy_frame(conn, query, params)
    frame["session_date"] = pd.to_datetime(frame["session_date"])
    for name in columns:
        frame[name] = pd.to_numeric(frame[name], errors="raise").astype(float)
    return frame


def load_labels(
    conn: PgConnection, start: date, end: date, horizon_sessions: int, schema: str = "marts"
) -> pd.DataFrame:
    """Labels of sessions in ``[start, end]`` whose horizon ended by ``end``.

    Raises
    ------
    TrainingDataError
        marts.labels has no column for the horizon.
    """
    ret_col, end_col = label_columns(horizon_sessions)
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
        select symbol, session_date, {_quote(ret_col)}, {_quote(end_col)}
        from {_table(schema, LABELS)}
        where session_date between %s and %s
          and {_quote(end_col)} <= %s
          and {_quote(ret_col)} is not null
        order by session_date, symbol
    """
    frame = _copy_frame(conn, query, [start, end, end])
    frame["session_date"] = pd.to_datetime(frame["session_date"])
    frame[end_col] = pd.to_datetime(frame[end_col])
    frame[ret_col] = frame[ret_col].astype(float)
    return frame


def load_universe(conn: PgConnection, session: date, schema: str = "marts") -> list[str]:
    """Tradable symbols of the universe mart at ``session``, sorted."""
    with conn.cursor() as cur:
        cur.execute(
            f"select symbol from {_table(schema, UNIVERSE)} where session_date = %s and is_tradable "
            "order by symbol",
            (session,),
        )
        return [r[0] for r in cur.fetchall()]
