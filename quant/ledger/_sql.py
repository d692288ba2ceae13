"""Small helpers the ledger's modules share: rows as dicts, many rows in one statement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["dict_rows", "execute_values", "first_dict_row"]


def dict_rows(cur: Any) -> list[dict[str, Any]]:
    """The cursor's remaining rows as dicts keyed by column name."""
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def first_dict_row(conn: Any, sql: str, params: Sequence[Any]) -> dict[str, Any] | None:
    """The first row ``sql`` returns, as a dict keyed by column name; None if none."""
    with conn.cursor() as cur:
        cur.execute(sql, params)
        rows = dict_rows(cur)
    return rows[0] if rows else None


def execute_values(
    cur: Any,
    sql: str,
    rows: Sequence[Sequence[Any]],
    *,
    template: str | None = None,
    fetch: bool = False,
) -> list[tuple[Any, ...]]:
    """``execute_values`` of all ``rows`` in one statement (``sql`` has one ``VALUES %s``)."""
    from psycopg2.extras import execute_values as _execute_values

    out = _execute_values(
        cur, sql, rows, template=template, page_size=max(len(rows), 1), fetch=fetch
    )
    return out if fetch else []
