"""One SQL statement on a connection of its own, and emptying the pipeline's tables, for tests.

Each function opens a connection with :func:`quant.db.connect`, runs in one
transaction (committed when the statement succeeds, rolled back when it
raises) and closes the connection, so a test reads what earlier stages
committed and leaves nothing open. Parameters are passed to the driver
(``%s`` placeholders), never formatted into the SQL.
"""

from __future__ import annotations

from typing import Any

from quant.config import Settings
from quant.db import connect

__all__ = ["execute", "query", "read", "scalar", "truncate_pipeline_tables"]

_PIPELINE_TABLES = """
    select quote_ident(schemaname) || '.' || quote_ident(tablename)
    from pg_tables
    where schemaname in ('raw', 'ops') and tablename <> 'schema_migrations'
"""


def query(settings: Settings, sql: str, *args: Any) -> list[tuple]:
    """The rows ``sql`` returns (``[]`` for a statement that returns none).

    Parameters
    ----------
    settings : Settings
        Which database.
    sql : str
        One statement (or several separated by ``;``: the rows are the last one's).
    *args
        Values of the ``%s`` placeholders, in order.

    Returns
    -------
    list of tuple
        One tuple per row, columns in the statement's order.
    """
    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, args or None)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def read(conn: Any, sql: str, *args: Any) -> list[tuple]:
    """The rows ``sql`` returns on a connection the test holds open, as :func:`query`;
    the reading transaction is rolled back after, so the connection holds no snapshot
    or lock and its next statement sees what others committed since.

    Parameters
    ----------
    conn : psycopg2 connection
    sql : str
        One statement that returns rows.
    *args
        Values of the ``%s`` placeholders, in order.
    """
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args or None)
            return cur.fetchall()
    finally:
        conn.rollback()


def scalar(settings: Settings, sql: str, *args: Any) -> Any:
    """The first column of the first row ``sql`` returns.

    Raises
    ------
    LookupError
        If the statement returns no row.
    """
    rows = query(settings, sql, *args)
    if not rows:
        raise LookupError(f"no row returned by: {sql}")
    return rows[0][0]


def execute(settings: Settings, sql: str, *args: Any) -> None:
    """Run ``sql`` (a write, DDL, or several statements separated by ``;``) and commit."""
    query(settings, sql, *args)


def truncate_pipeline_tables(settings: Settings) -> None:
    """Empty every table of the ``raw`` and ``ops`` schemas; the applied migrations are kept.

    Identities restart, so ids begin at 1 again. The dbt schemas (staging,
    intermediate, marts) are left as they are.
    """
    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(_PIPELINE_TABLES)
            tables = [row[0] for row in cur.fetchall()]
            if tables:
                cur.execute(f"truncate {', '.join(tables)} restart identity cascade")
    finally:
        conn.close()
