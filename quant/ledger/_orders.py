"""Orders (``ops.orders``): their statuses from ``generated`` to ``filled``.

Every status change of an order is one statement here; the execution stages
decide, this module records.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from quant.ledger._sql import dict_rows, execute_values

__all__ = [
    "ORDER_FIELDS",
    "live_order_ids",
    "mark_broker_rejected",
    "mark_submitted",
    "mark_submitting",
    "orders",
    "record_verdicts",
    "refresh_orders",
    "status_counts",
]

ORDER_FIELDS = (
    "client_order_id, symbol, side, qty_shares, ref_price_usd, notional_usd, order_type, "
    "time_in_force, target_weight, current_qty_shares, status, reject_reasons, broker_order_id, "
    "filled_qty_shares, sequence, adv_capped, cash_capped"
)
"""Columns :func:`orders` returns."""


def orders(
    conn: Any, run: Mapping[str, Any], statuses: tuple[str, ...] | None = None
) -> list[dict[str, Any]]:
    """The run's orders (``run``: an execution run), in sequence, optionally of some statuses."""
    sql = f"select {ORDER_FIELDS} from ops.orders where namespace = %s and logical_date = %s"
    params: list[Any] = [run["namespace"], run["logical_date"]]
    if statuses is not None:
        sql += " and status = any(%s)"
        params.append(list(statuses))
    with conn.cursor() as cur:
        cur.execute(sql + " order by sequence", params)
        return dict_rows(cur)


def status_counts(conn: Any, run: Mapping[str, Any]) -> dict[str, int]:
    """Number of the run's orders by status."""
    with conn.cursor() as cur:
        cur.execute(
            "select status, count(*) from ops.orders where namespace = %s and logical_date = %s "
            "group by status order by status",
            (run["namespace"], run["logical_date"]),
        )
        return {r[0]: int(r[1]) for r in cur.fetchall()}


def record_verdicts(
    conn: Any, verdicts: Sequence[tuple[str, bool, Sequence[str], Sequence[Mapping[str, Any]]]]
) -> None:
    """Pre-trade verdicts ``(client_order_id, approved, reason codes, denials)`` in one statement.

    Only ``generated`` orders change: approved ones become ``approved``, the others
    ``rejected`` with their reason codes and the structured denials.
    """
    if not verdicts:
        return
    with conn, conn.cursor() as cur:
        execute_values(
            cur,
            "update ops.orders as o set status = v.status, reject_reasons = v.reasons, "
            "reject_details = v.details, checked_at = now(), updated_at = now() "
            "from (values %s) as v (client_order_id, status, reasons, details) "
            "where o.client_order_id = v.client_order_id and o.status = 'generated'",
            [
                (
                    cid,
                    "approved" if approved else "rejected",
                    list(codes) if not approved else [],
                    json.dumps(list(details)) if details else None,
                )
                for cid, approved, codes, details in verdicts
            ],
            template="(%s, %s, %s::text[], %s::jsonb)",
        )


def mark_submitting(conn: Any, client_order_ids: Sequence[str]) -> None:
    """Mark orders ``submitting`` (committed) before they are sent."""
    if not client_order_ids:
        return
    with conn, conn.cursor() as cur:
        cur.execute(
            "update ops.orders set status = 'submitting', updated_at = now() "
            "where client_order_id = any(%s)",
            (list(client_order_ids),),
        )


def mark_submitted(conn: Any, placed: Mapping[str, str]) -> None:
    """Mark orders ``submitted`` with their broker order ids (``{client id: broker id}``)."""
    if not placed:
        return
    with conn, conn.cursor() as cur:
        execute_values(
            cur,
            "update ops.orders as o set status = 'submitted', broker_order_id = v.broker_order_id, "
            "submitted_at = coalesce(o.submitted_at, now()), updated_at = now() "
            "from (values %s) as v (client_order_id, broker_order_id) "
            "where o.client_order_id = v.client_order_id",
            list(placed.items()),
        )


def mark_broker_rejected(conn: Any, client_order_id: str, error: str) -> None:
    """Record the broker's refusal of an order."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "update ops.orders set status = 'broker_rejected', "
            "reject_details = %s, updated_at = now() "
            "where client_order_id = %s",
            (json.dumps({"broker_error": error}), client_order_id),
        )


def live_order_ids(conn: Any, broker: str, account: str) -> list[str]:
    """Client ids of the account's orders that may still change at the broker, oldest first."""
    with conn.cursor() as cur:
        cur.execute(
            "select client_order_id from ops.orders where broker = %s and account = %s "
            "and status in ('submitted', 'partially_filled', 'submitting') "
            "order by logical_date, sequence",
            (broker, account),
        )
        return [r[0] for r in cur.fetchall()]


def refresh_orders(conn: Any, updates: Sequence[tuple[str, str, float, str]]) -> int:
    """Copy the broker's view ``(client id, status, filled shares, broker id)`` into the orders.

    One statement, one transaction; returns how many rows changed.
    """
    if not updates:
        return 0
    with conn, conn.cursor() as cur:
        execute_values(
            cur,
            "update ops.orders as o set status = v.status, filled_qty_shares = v.filled, "
            "broker_order_id = v.broker_order_id, updated_at = now() "
            "from (values %s) as v (client_order_id, status, filled, broker_order_id) "
            "where o.client_order_id = v.client_order_id "
            "and (o.status <> v.status or o.filled_qty_shares <> v.filled)",
            list(updates),
            template="(%s, %s, %s::double precision, %s)",
        )
        return cur.rowcount
