"""Execution runs (``ops.execution_runs``): one per order namespace and session.

A run records which broker and account a DAG run's orders went to, how they
were risk-checked, whether it was a dry run, and the account's equity and cash
when its orders were generated.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from quant.exceptions import ExecutionError
from quant.ledger._sql import execute_values, first_dict_row

__all__ = ["find_run", "has_runs_after", "load_run", "record_run", "take_over_run"]

_ORDER_COLUMNS = (
    "client_order_id, namespace, logical_date, run_id, dag_id, symbol, side, qty_shares, "
    "ref_price_usd, notional_usd, order_type, time_in_force, target_weight, target_qty_shares, "
    "current_qty_shares, adv_capped, cash_capped, sequence, broker, account"
)


def find_run(conn: Any, namespace: str, session: date) -> dict[str, Any] | None:
    """The namespace's execution run for ``session``, or None."""
    return first_dict_row(
        conn,
        "select * from ops.execution_runs where namespace = %s and logical_date = %s",
        (namespace, session),
    )


def load_run(conn: Any, dag_id: str, session: date, run_id: str) -> dict[str, Any]:
    """The execution run ``generate_orders`` recorded for this DAG run and date.

    Raises
    ------
    ExecutionError
        No orders were generated for the run.
    """
    run = first_dict_row(
        conn,
        "select * from ops.execution_runs where dag_id = %s and logical_date = %s "
        "and run_id = %s order by created_at desc limit 1",
        (dag_id, session, run_id),
    )
    if run is None:
        raise ExecutionError(
            f"no orders were generated for {dag_id} run {run_id!r} on {session}: "
            "run generate_orders first"
        )
    return run


def has_runs_after(conn: Any, namespace: str, session: date) -> bool:
    """Whether the namespace has an execution run for a session after ``session``."""
    with conn.cursor() as cur:
        cur.execute(
            "select 1 from ops.execution_runs where namespace = %s and logical_date > %s limit 1",
            (namespace, session),
        )
        return cur.fetchone() is not None


def take_over_run(conn: Any, namespace: str, session: date, run_id: str) -> None:
    """A new DAG run of the same date (a manual rerun) takes over the date's run and orders."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "update ops.execution_runs set run_id = %s, updated_at = now() "
            "where namespace = %s and logical_date = %s",
            (run_id, namespace, session),
        )
        cur.execute(
            "update ops.orders set run_id = %s, updated_at = now() "
            "where namespace = %s and logical_date = %s",
            (run_id, namespace, session),
        )


def record_run(
    conn: Any, run: dict[str, Any], orders: Sequence[Sequence[Any]]
) -> bool:
    """Record an execution run and its orders (status ``generated``) in one transaction.

    Parameters
    ----------
    run : dict
        Columns of ``ops.execution_runs``: namespace, logical_date, run_id, dag_id,
        run_type, broker, account, trading_mode, risk_check, choice_reason, dry_run,
        equity_usd, cash_usd.
    orders : sequence of rows
        One row per order, in the column order of ``_ORDER_COLUMNS``.

    Returns
    -------
    bool
        False when a concurrent run recorded the same namespace and date first:
        theirs stand and nothing is written.
    """
    columns = list(run)
    with conn, conn.cursor() as cur:
        cur.execute(
            f"insert into ops.execution_runs ({', '.join(columns)}) "
            f"values ({', '.join(['%s'] * len(columns))}) "
            "on conflict (namespace, logical_date) do nothing returning namespace",
            [run[c] for c in columns],
        )
        if cur.fetchone() is None:
            return False
        if orders:
            execute_values(
                cur,
                f"insert into ops.orders ({_ORDER_COLUMNS}, status) values %s",
                orders,
                template="(" + ", ".join(["%s"] * 20) + ", 'generated')",
            )
    return True
