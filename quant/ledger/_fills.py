"""Fills (``ops.fills``) and the positions they make (``ops.positions``).

A fill is recorded once per broker fill id; recording it applies it to the
position (average cost of the open quantity, :func:`next_position`) and to its
order's average fill price, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from quant.ledger._position_math import QTY_TOLERANCE, next_position
from quant.ledger._sql import execute_values
from quant.typing import Fill

__all__ = ["last_fill_at", "positions", "record_fills"]

def last_fill_at(conn: Any, broker: str, account: str) -> datetime | None:
    """Time of the account's latest recorded fill, or None."""
    with conn.cursor() as cur:
        cur.execute(
            "select max(filled_at) from ops.fills where broker = %s and account = %s",
            (broker, account),
        )
        return cur.fetchone()[0]


def record_fills(conn: Any, broker: str, account: str, fills: Sequence[Fill]) -> list[Fill]:
    """Record the fills not recorded yet, oldest first, and apply them; the new ones.

    One transaction: the fills (each fill id once), the positions they move, and the
    average fill price of their orders.
    """
    ordered: list[Fill] = []
    seen: set[str] = set()
    for f in sorted(fills, key=lambda f: (f.filled_at, f.fill_id)):
        if f.fill_id not in seen:
            seen.add(f.fill_id)
            ordered.append(f)
    if not ordered:
        return []
    with conn, conn.cursor() as cur:
        inserted = {
            r[0]
            for r in execute_values(
                cur,
                "insert into ops.fills (broker, account, fill_id, order_id, "
                "client_order_id, symbol, side, qty_shares, price_usd, commission_usd, "
                "filled_at) values %s "
                "on conflict (broker, account, fill_id) do nothing returning fill_id",
                [
                    (broker, account, f.fill_id, f.order_id, f.client_order_id, f.symbol, f.side,
                     f.qty_shares, f.price_usd, f.commission_usd, f.filled_at)
                    for f in ordered
                ],
                fetch=True,
            )
        }
        new = [f for f in ordered if f.fill_id in inserted]
        if new:
            _apply_fills(cur, broker, account, new)
            cur.execute(
                "update ops.orders as o set avg_fill_price_usd = coalesce(("
                "select sum(f.qty_shares * f.price_usd) / nullif(sum(f.qty_shares), 0) "
                "from ops.fills as f where f.broker = %s and f.account = %s "
                "and f.client_order_id = o.client_order_id), o.avg_fill_price_usd) "
                "where o.client_order_id = any(%s)",
                (broker, account, sorted({f.client_order_id for f in new})),
            )
    return new


def _apply_fills(cur: Any, broker: str, account: str, fills: Sequence[Fill]) -> None:
    """Apply fills, in the order given, to ``ops.positions`` (one read, one upsert)."""
    symbols = sorted({f.symbol for f in fills})
    cur.execute(
        "select symbol, qty_shares, avg_price_usd from ops.positions "
        "where broker = %s and account = %s and symbol = any(%s) for update",
        (broker, account, symbols),
    )
    book = {r[0]: (float(r[1]), float(r[2])) for r in cur.fetchall()}
    for f in fills:
        old_qty, old_avg = book.get(f.symbol, (0.0, 0.0))
        book[f.symbol] = next_position(old_qty, old_avg, f.signed_qty_shares, f.price_usd)
    execute_values(
        cur,
        "insert into ops.positions (broker, account, symbol, qty_shares, avg_price_usd) "
        "values %s on conflict (broker, account, symbol) do update set "
        "qty_shares = excluded.qty_shares, avg_price_usd = excluded.avg_price_usd, "
        "updated_at = now()",
        [(broker, account, symbol, *book[symbol]) for symbol in symbols],
    )


def positions(conn: Any, broker: str, account: str) -> dict[str, float]:
    """The account's positions in the books, ``{symbol: shares}`` (flat ones left out)."""
    with conn.cursor() as cur:
        cur.execute(
            "select symbol, qty_shares from ops.positions where broker = %s and account = %s",
            (broker, account),
        )
        return {r[0]: float(r[1]) for r in cur.fetchall() if abs(r[1]) > QTY_TOLERANCE}
