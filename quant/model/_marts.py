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
    "FEATURES_TABLE",
    "LABELS_TABLE",
    "UNIVERSE_TABLE",
    "feature_columns",
    "history_start",
    "load_features",
    "load_labels",
    "load_universe",
]

FEATURES_TABLE = "marts.features"
LABELS_TABLE = "marts.labels"
UNIVERSE_TABLE = "marts.universe"

_NUMERIC_TYPES = ("double precision", "real", "numeric", "integer", "bigint", "smallint")


def _split(table: str) -> tuple[str, str]:
    schema, name = table.split(".", 1)
    return schema, name


def feature_columns(conn: PgConnection) -> list[str]:
    """Numeric columns of marts.features, in table order (the candidate model inputs).

    Raises
    ------
    TrainingDataError
        The feature mart does not exist (dbt has not built it).
    """
    schema, name = _split(FEATURES_TABLE)
    with conn.cursor() as cur:
        cur.execute(
            """
            select column_name, data_type from information_schema.columns
            where table_schema = %s and table_name = %s
            order by ordinal_position
            """,
            (schema, name),
        )
        rows = cur.fetchall()
    if not rows:
        raise TrainingDataError(f"{FEATURES_TABLE} does not exist: build the dbt marts first")
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


def history_start(conn: PgConnection, session: date, sessions: int) -> date | None:
    """First of the last ``sessions`` sessions of marts.features up to ``session``."""
    with conn.cursor() as cur:
        cur.execute(
            f"""
            select min(session_date) from (
                select distinct session_date from {FEATURES_TABLE}
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
) -> pd.DataFrame:
    """Feature rows of tradable names (marts.universe) dated in ``[start, end]``.

    Returns
    -------
    DataFrame
        ``symbol``, ``session_date`` (datetime64) and ``columns`` as float.
    """
    selected = ", ".join(f"f.{_quote(c)}" for c in columns)
    query = f"""
        select f.symbol, f.session_date{', ' + selected if selected else ''}
        from {FEATURES_TABLE} f
        join {UNIVERSE_TABLE} u on u.symbol = f.symbol and u.session_date = f.session_date
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


def load_labels(conn: PgConnection, start: date, end: date, horizon_sessions: int) -> pd.DataFrame:
    """Labels of sessions in ``[start, end]`` whose horizon ended by ``end``.

    Raises
    ------
    TrainingDataError
        marts.labels has no column for the horizon.
    """
    ret_col, end_col = label_columns(horizon_sessions)
    schema, name = _split(LABELS_TABLE)
    with conn.cursor() as cur:
        cur.execute(
            """
            select column_name from information_schema.columns
            where table_schema = %s and table_name = %s
            """,
            (schema, name),
        )
        present = {r[0] for r in cur.fetchall()}
    if not present:
        raise TrainingDataError(f"{LABELS_TABLE} does not exist: build the dbt marts first")
    if ret_col not in present or end_col not in present:
        horizons = sorted(c for c in present if c.startswith("forward_return_"))
        raise TrainingDataError(
            f"{LABELS_TABLE} has no label for a {horizon_sessions}-session horizon; it has {horizons}"
        )
    query = f"""
        select symbol, session_date, {_quote(ret_col)}, {_quote(end_col)}
        from {LABELS_TABLE}
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


def load_universe(conn: PgConnection, session: date) -> list[str]:
    """Tradable symbols of marts.universe at ``session``, sorted."""
    with conn.cursor() as cur:
        cur.execute(
            f"select symbol from {UNIVERSE_TABLE} where session_date = %s and is_tradable "
            "order by symbol",
            (session,),
        )
        return [r[0] for r in cur.fetchall()]
