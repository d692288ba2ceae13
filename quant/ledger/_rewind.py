"""The books' part of rewinding a simulator account to the start of a session.

Called inside the transaction that also rewinds the simulator's own tables
(:func:`quant.execution.rewind_sim_account`): orders of the session and later,
and their execution runs and breaks, are removed; fills at or after the cutoff
are removed; the previous session's orders rest again; positions are rebuilt
from the fills and the corporate events that remain (the session's and later
events are removed first, :func:`quant.ledger.rewind_corporate_events`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from quant.ledger._corporate import position_events, replayed_positions
from quant.ledger._position_math import next_position

__all__ = ["rebuilt_positions", "rewind_books"]


def rebuilt_positions(
    fills: list[tuple[str, str, float, float]],
) -> dict[str, tuple[float, float]]:
    """Positions (qty, average price) from fills (symbol, side, qty, price) in time order."""
    book: dict[str, tuple[float, float]] = {}
    for symbol, side, qty, price in fills:
        old_qty, old_avg = book.get(symbol, (0.0, 0.0))
        book[symbol] = next_position(old_qty, old_avg, qty if side == "buy" else -qty, price)
    return {s: v for s, v in book.items() if v[0] != 0.0}


def rewind_books(
    cur: Any,
    *,
    account: str,
    namespace: str,
    session: date,
    previous_session: date,
    cutoff: datetime,
) -> tuple[list[str], list[str]]:
    """Rewind the simulator account's books; ``(removed order ids, resting order ids)``.

    ``cur`` is a cursor of the caller's transaction.
    """
    cur.execute(
        "delete from ops.fills where broker = 'sim' and account = %s and filled_at >= %s",
        (account, cutoff),
    )
    cur.execute(
        "select client_order_id from ops.orders where namespace = %s and logical_date >= %s",
        (namespace, session),
    )
    later = [r[0] for r in cur.fetchall()]
    cur.execute(
        "delete from ops.orders where namespace = %s and logical_date >= %s", (namespace, session)
    )
    cur.execute(
        "delete from ops.execution_runs where namespace = %s and logical_date >= %s",
        (namespace, session),
    )
    cur.execute(
        "delete from ops.reconciliation_breaks where broker = 'sim' and account = %s "
        "and logical_date >= %s",
        (account, session),
    )
    cur.execute(
        "select client_order_id from ops.orders where namespace = %s and logical_date = %s "
        "and broker_order_id is not null",
        (namespace, previous_session),
    )
    resting = [r[0] for r in cur.fetchall()]
    cur.execute(
        "update ops.orders set status = 'submitted', filled_qty_shares = 0, "
        "avg_fill_price_usd = null, updated_at = now() "
        "where client_order_id = any(%s) and status in ('partially_filled', 'filled', 'cancelled')",
        (resting,),
    )
    cur.execute(
        "select filled_at, symbol, side, qty_shares, price_usd from ops.fills "
        "where broker = 'sim' and account = %s order by filled_at, symbol",
        (account,),
    )
    fills = [(r[0], r[1], r[2], float(r[3]), float(r[4])) for r in cur.fetchall()]
    book = replayed_positions(fills, position_events(cur, "sim", account))
    cur.execute("delete from ops.positions where broker = 'sim' and account = %s", (account,))
    for symbol, (qty, avg) in book.items():
        cur.execute(
            "insert into ops.positions (broker, account, symbol, qty_shares, "
            "avg_price_usd) values ('sim', %s, %s, %s, %s)",
            (account, symbol, qty, avg),
        )
    return later, resting
