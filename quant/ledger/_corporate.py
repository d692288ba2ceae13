"""Corporate events (``ops.corporate_events``): splits, dividends and closings in the books.

The simulator applies a corporate action to its own account (positions, cash,
resting orders) and, in the same transaction, records it here with
:func:`record_corporate_events`, which applies it to the pipeline's book too
(``ops.positions``, and the quantities of the live orders in ``ops.orders``), so
that reconciliation still matches. An event is recorded once per (account,
symbol, session, type): :func:`applied_corporate_events` tells the simulator what
a session already applied. A rewind removes the session's and later events and
gives back what they changed (:func:`rewind_corporate_events`); positions are then
rebuilt from the fills and the events that remain (:func:`replayed_positions`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from quant.ledger._position_math import EVENT_RANK, event_outcome, next_position
from quant.ledger._sql import dict_rows, execute_values
from quant.typing import CorporateAction

__all__ = [
    "CorporateEvent",
    "OrderAdjustment",
    "applied_corporate_events",
    "book_broker_corporate_actions",
    "corporate_events",
    "position_events",
    "record_corporate_events",
    "replayed_positions",
    "rewind_corporate_events",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAdjustment:
    """A live order a corporate event changed: its quantities (shares) and limit (USD)
    before and after (a split scales them; a closing cancels the order)."""

    client_order_id: str
    qty_before_shares: float
    filled_before_shares: float
    limit_before_usd: float | None
    qty_after_shares: float
    filled_after_shares: float
    limit_after_usd: float | None
    cancelled: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class CorporateEvent:
    """A corporate action as applied to one account's position.

    ``cash_usd`` is the signed cash it moved (dividend, cash in lieu, closing proceeds).
    """

    action: CorporateAction
    qty_before_shares: float
    qty_after_shares: float
    avg_price_before_usd: float
    avg_price_after_usd: float
    cash_usd: float
    orders: tuple[OrderAdjustment, ...] = ()


def applied_corporate_events(
    cur: Any, broker: str, account: str, session: date
) -> set[tuple[str, str]]:
    """``(symbol, event type)`` of the events already recorded for the account's ``session``."""
    cur.execute(
        "select symbol, event_type from ops.corporate_events "
        "where broker = %s and account = %s and session_date = %s",
        (broker, account, session),
    )
    return {(r[0], r[1]) for r in cur.fetchall()}


def record_corporate_events(
    cur: Any, broker: str, account: str, events: Sequence[CorporateEvent]
) -> None:
    """Record events and apply them to the pipeline's book (``cur``: the caller's transaction).

    ``ops.positions`` gets the same outcome computed on its own quantity, and the live
    orders the event changed get their new quantities and limits in ``ops.orders``
    (a cancelled order's status comes from the broker at reconciliation).
    """
    if not events:
        return
    execute_values(
        cur,
        "insert into ops.corporate_events (broker, account, symbol, session_date, event_type, "
        "effective_at, split_ratio, dividend_usd, price_usd, qty_before_shares, "
        "qty_after_shares, avg_price_before_usd, avg_price_after_usd, cash_usd, "
        "orders_before, detail) values %s",
        [
            (
                broker, account, e.action.symbol, e.action.session, e.action.action_type,
                e.action.effective_at, e.action.split_ratio, e.action.dividend_usd,
                e.action.price_usd, e.qty_before_shares, e.qty_after_shares,
                e.avg_price_before_usd, e.avg_price_after_usd, e.cash_usd,
                json.dumps([
                    {"client_order_id": o.client_order_id, "qty_shares": o.qty_before_shares,
                     "filled_qty_shares": o.filled_before_shares,
                     "limit_price_usd": o.limit_before_usd}
                    for o in e.orders
                ]),
                e.action.detail,
            )
            for e in events
        ],
    )
    symbols = sorted({e.action.symbol for e in events})
    cur.execute(
        "select symbol, qty_shares, avg_price_usd from ops.positions "
        "where broker = %s and account = %s and symbol = any(%s) for update",
        (broker, account, symbols),
    )
    book = {r[0]: (float(r[1]), float(r[2])) for r in cur.fetchall()}
    touched: set[str] = set()
    for e in events:
        a = e.action
        if a.symbol not in book:
            continue
        qty, avg, _ = event_outcome(
            *book[a.symbol], a.action_type, split_ratio=a.split_ratio,
            dividend_usd=a.dividend_usd, price_usd=a.price_usd,
        )
        book[a.symbol] = (qty, avg)
        touched.add(a.symbol)
    for symbol in sorted(touched):
        qty, avg = book[symbol]
        cur.execute(
            "update ops.positions set qty_shares = %s, avg_price_usd = %s, updated_at = now() "
            "where broker = %s and account = %s and symbol = %s",
            (qty, avg, broker, account, symbol),
        )
    for o in (o for e in events for o in e.orders if not o.cancelled):
        cur.execute(
            "update ops.orders set qty_shares = %s, filled_qty_shares = %s, "
            "limit_price_usd = %s, updated_at = now() "
            "where client_order_id = %s and broker = %s and account = %s",
            (o.qty_after_shares, o.filled_after_shares, o.limit_after_usd,
             o.client_order_id, broker, account),
        )


def book_broker_corporate_actions(
    conn: Any, broker: str, account: str, actions: Sequence[CorporateAction]
) -> list[CorporateEvent]:
    """Record on the pipeline's book of a real broker's account the splits and dividends the
    broker applies to the account itself; the events recorded now.

    The broker scales its positions on a split's ex-date and pays dividends; the books
    follow (``ops.positions`` with the same whole-share outcome as the simulator's, the
    event in ``ops.corporate_events``) so that reconciliation expects what the broker
    shows. Closings of delisted symbols are the broker's to report (as fills or a
    position that goes away): they are not booked here. Actions on symbols the book does
    not hold, or already recorded for the account, are skipped.
    """
    wanted = [a for a in actions if a.action_type in ("split", "dividend")]
    if not wanted:
        return []
    with conn.cursor() as cur:
        done: set[tuple[str, str, date]] = set()
        for session in sorted({a.session for a in wanted}):
            done |= {(s, k, session) for s, k in
                     applied_corporate_events(cur, broker, account, session)}
        cur.execute(
            "select symbol, qty_shares, avg_price_usd from ops.positions "
            "where broker = %s and account = %s and symbol = any(%s) and qty_shares <> 0",
            (broker, account, sorted({a.symbol.upper() for a in wanted})),
        )
        book = {r[0]: (float(r[1]), float(r[2])) for r in cur.fetchall()}
        events = []
        for a in sorted(wanted, key=lambda a: (a.effective_at, EVENT_RANK[a.action_type], a.symbol)):
            symbol = a.symbol.upper()
            if symbol not in book or (symbol, a.action_type, a.session) in done:
                continue
            qty, avg = book[symbol]
            new_qty, new_avg, moved = event_outcome(
                qty, avg, a.action_type, split_ratio=a.split_ratio,
                dividend_usd=a.dividend_usd, price_usd=a.price_usd,
            )
            book[symbol] = (new_qty, new_avg)
            done.add((symbol, a.action_type, a.session))
            events.append(CorporateEvent(
                action=a, qty_before_shares=qty, qty_after_shares=new_qty,
                avg_price_before_usd=avg, avg_price_after_usd=new_avg, cash_usd=moved,
            ))
        record_corporate_events(cur, broker, account, events)
    return events


def rewind_corporate_events(
    cur: Any, broker: str, account: str, session: date
) -> tuple[int, float, list[dict[str, Any]]]:
    """Remove the account's events of ``session`` and later; what they changed.

    The orders they resized get their earlier quantities back in ``ops.orders``.

    Returns
    -------
    tuple
        ``(events, cash_usd, orders)``: how many were removed, the cash they moved (to take back) and
        each order they changed as it was before the first of them
        (``client_order_id, qty_shares, filled_qty_shares, limit_price_usd``).
    """
    cur.execute(
        "delete from ops.corporate_events where broker = %s and account = %s "
        "and session_date >= %s returning cash_usd, orders_before, effective_at, event_id",
        (broker, account, session),
    )
    rows = sorted(cur.fetchall(), key=lambda r: (r[2], r[3]), reverse=True)
    cash = sum(float(r[0]) for r in rows)
    before: dict[str, dict[str, Any]] = {}
    for row in rows:  # latest first: the earliest event's "before" is the one kept
        for order in row[1]:
            before[order["client_order_id"]] = order
    orders = list(before.values())
    for o in orders:
        cur.execute(
            "update ops.orders set qty_shares = %s, limit_price_usd = %s, updated_at = now() "
            "where client_order_id = %s and broker = %s and account = %s",
            (o["qty_shares"], o["limit_price_usd"], o["client_order_id"], broker, account),
        )
    return len(rows), cash, orders


def position_events(
    cur: Any, broker: str, account: str
) -> list[tuple[datetime, str, str, float | None]]:
    """The account's events that change positions: ``(effective_at, symbol, type, ratio)``."""
    cur.execute(
        "select effective_at, symbol, event_type, split_ratio from ops.corporate_events "
        "where broker = %s and account = %s and event_type <> 'dividend' "
        "order by effective_at, event_id",
        (broker, account),
    )
    return [(r[0], r[1], r[2], None if r[3] is None else float(r[3])) for r in cur.fetchall()]


def replayed_positions(
    fills: Sequence[tuple[datetime, str, str, float, float]],
    events: Sequence[tuple[datetime, str, str, float | None]],
) -> dict[str, tuple[float, float]]:
    """Positions (qty, average price) from fills ``(at, symbol, side, qty, price)`` and
    corporate events ``(at, symbol, type, ratio)``, replayed in time order (at the same
    time: splits before fills, closings after)."""
    steps = sorted(
        [(f[0], EVENT_RANK["fill"], i, "fill", f) for i, f in enumerate(fills)]
        + [(e[0], EVENT_RANK[e[2]], i, "event", e) for i, e in enumerate(events)],
        key=lambda s: (s[0], s[1], s[2]),
    )
    book: dict[str, tuple[float, float]] = {}
    for _, _, _, kind, step in steps:
        if kind == "fill":
            _, symbol, side, qty, price = step
            old_qty, old_avg = book.get(symbol, (0.0, 0.0))
            book[symbol] = next_position(old_qty, old_avg, qty if side == "buy" else -qty, price)
        else:
            _, symbol, event_type, ratio = step
            if symbol in book:
                qty, avg, _ = event_outcome(*book[symbol], event_type, split_ratio=ratio)
                book[symbol] = (qty, avg)
    return {s: v for s, v in book.items() if v[0] != 0.0}


def corporate_events(
    conn: Any,
    broker: str,
    account: str,
    *,
    start: date | None = None,
    end: date | None = None,
) -> list[dict[str, Any]]:
    """The account's corporate events from ``start`` to ``end`` (inclusive), oldest first."""
    with conn.cursor() as cur:
        cur.execute(
            "select session_date, symbol, event_type, split_ratio, dividend_usd, price_usd, "
            "qty_before_shares, qty_after_shares, avg_price_before_usd, avg_price_after_usd, "
            "cash_usd, detail from ops.corporate_events "
            "where broker = %s and account = %s "
            "and session_date between coalesce(%s, '-infinity'::date) "
            "and coalesce(%s, 'infinity'::date) "
            "order by session_date, effective_at, event_id",
            (broker, account, start, end),
        )
        return dict_rows(cur)
