"""Reconciliation breaks (``ops.reconciliation_breaks``): where the books and the broker differ."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

__all__ = ["open_breaks", "record_break", "resolve_break"]


def open_breaks(conn: Any, broker: str, account: str) -> set[str]:
    """Symbols of the account with an unresolved break."""
    with conn.cursor() as cur:
        cur.execute(
            "select distinct symbol from ops.reconciliation_breaks "
            "where broker = %s and account = %s and resolved_at is null",
            (broker, account),
        )
        return {r[0] for r in cur.fetchall()}


def record_break(
    conn: Any, broker: str, account: str, session: date, run_id: str, diff: Mapping[str, Any]
) -> None:
    """Record one difference (``symbol``, ``expected_qty_shares``, ``broker_qty_shares``,
    ``locked``, ``lock_error``)."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "insert into ops.reconciliation_breaks (broker, account, symbol, "
            "logical_date, run_id, expected_qty_shares, broker_qty_shares, locked, "
            "lock_error) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (broker, account, diff["symbol"], session, run_id, diff["expected_qty_shares"],
             diff["broker_qty_shares"], diff["locked"], diff["lock_error"]),
        )


def resolve_break(conn: Any, broker: str, account: str, symbol: str, run_id: str) -> None:
    """Mark the symbol's open break resolved by ``run_id``."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "update ops.reconciliation_breaks set resolved_at = now(), "
            "resolved_run_id = %s where broker = %s and account = %s and symbol = %s "
            "and resolved_at is null",
            (run_id, broker, account, symbol),
        )
