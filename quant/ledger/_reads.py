"""Reading the books for reports, the command line and the backtest.

Dry runs have execution runs and orders of their own (namespace
``<namespace>/dry-run/<run id>``): the account-level views here leave them out,
the per-run views show a run its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from quant.ledger._position_math import QTY_TOLERANCE
from quant.ledger._sql import dict_rows, first_dict_row

__all__ = [
    "account_equity",
    "held_symbols",
    "account_orders",
    "latest_execution",
    "order_outcomes",
    "run_execution",
    "run_orders",
    "session_order_counts",
]


def run_execution(conn: Any, dag_id: str, run_id: str) -> dict[str, Any] | None:
    """The DAG run's own execution record (the latest, should it have several)."""
    return first_dict_row(
        conn,
        "select * from ops.execution_runs where dag_id = %s and run_id = %s "
        "order by created_at desc limit 1",
        (dag_id, run_id),
    )


def latest_execution(conn: Any, dag_id: str, up_to: date) -> dict[str, Any] | None:
    """The DAG's latest real (not dry-run) execution record dated up to ``up_to``."""
    return first_dict_row(
        conn,
        "select * from ops.execution_runs where dag_id = %s and logical_date <= %s "
        "and not dry_run order by logical_date desc, updated_at desc, created_at desc limit 1",
        (dag_id, up_to),
    )


def account_equity(
    conn: Any,
    broker: str,
    account: str,
    *,
    up_to: date,
    since: date | None = None,
    limit: int | None = None,
    run_id: str | None = None,
) -> list[tuple[date, float, float]]:
    """The account's equity and cash (USD) per session as the runs saw them, oldest first.

    One point per session (its latest real run; ``run_id``'s own record counts even
    if it is a dry run), from ``since`` (default: any) to ``up_to``, the last
    ``limit`` sessions when given.
    """
    with conn.cursor() as cur:
        cur.execute(
            """
            select logical_date, equity_usd, cash_usd from (
                select distinct on (logical_date) logical_date, equity_usd, cash_usd
                from ops.execution_runs
                where broker = %s and account = %s and logical_date <= %s
                  and logical_date >= coalesce(%s, '-infinity'::date)
                  and (not dry_run or run_id = %s)
                order by logical_date, (run_id = %s) desc, created_at desc
            ) per_session order by logical_date desc limit %s
            """,
            (broker, account, up_to, since, run_id, run_id, limit),
        )
        return [(d, float(e), float(c)) for d, e, c in reversed(cur.fetchall())]


def run_orders(conn: Any, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """The DAG run's orders with their outcome, in sequence."""
    with conn.cursor() as cur:
        cur.execute(
            """
            select client_order_id, symbol, side, qty_shares, ref_price_usd, notional_usd, status,
                   reject_reasons, reject_details, filled_qty_shares, avg_fill_price_usd, sequence
            from ops.orders where dag_id = %s and run_id = %s
            order by sequence, symbol
            """,
            (dag_id, run_id),
        )
        return dict_rows(cur)


def order_outcomes(
    conn: Any, dag_id: str, sessions: Sequence[date]
) -> list[tuple[date, str, list[str] | None]]:
    """``(session, status, reject reasons)`` of the DAG's real orders on those sessions."""
    with conn.cursor() as cur:
        cur.execute(
            "select o.logical_date, o.status, o.reject_reasons from ops.orders as o "
            "join ops.execution_runs as r using (namespace, logical_date) "
            "where o.dag_id = %s and o.logical_date = any(%s) and not r.dry_run",
            (dag_id, list(sessions)),
        )
        return cur.fetchall()


def account_orders(
    conn: Any, dag_id: str, account: str, start: date, end: date
) -> list[tuple[date, str, str, float, str, float]]:
    """``(session, symbol, side, shares, status, reference price)`` of the account's orders,
    in order (the reference price is the one the order was sized at, USD)."""
    with conn.cursor() as cur:
        cur.execute(
            "select logical_date, symbol, side, qty_shares, status, ref_price_usd from ops.orders "
            "where dag_id = %s and account = %s and logical_date between %s and %s "
            "order by logical_date, sequence",
            (dag_id, account, start, end),
        )
        return cur.fetchall()


def session_order_counts(conn: Any, run: dict[str, Any]) -> tuple[int, int]:
    """``(orders, rejected)`` of an execution run."""
    with conn.cursor() as cur:
        cur.execute(
            "select count(*), count(*) filter (where status = 'rejected') "
            "from ops.orders where namespace = %s and logical_date = %s",
            (run["namespace"], run["logical_date"]),
        )
        orders, rejected = cur.fetchone()
    return int(orders), int(rejected)


def held_symbols(conn: Any, dag_id: str, up_to: date) -> list[str]:
    """Symbols held in the books by the account of the DAG's latest real run up to ``up_to``.

    The positions of ``ops.positions`` (not flat) of that run's broker account, sorted;
    empty when the DAG has no run yet.
    """
    run = latest_execution(conn, dag_id, up_to)
    if run is None:
        return []
    with conn.cursor() as cur:
        cur.execute(
            "select symbol from ops.positions where broker = %s and account = %s "
            "and abs(qty_shares) > %s order by symbol",
            (run["broker"], run["account"], QTY_TOLERANCE),
        )
        return [r[0] for r in cur.fetchall()]
