"""The ``submit_orders`` stage: approved orders to the broker, each client order id once.

Submits ``approved`` orders only, after asking the sidecar that it is up and
not HALTED (fail closed: if it cannot be reached, nothing is sent). Each order
is marked ``submitting`` before it is sent; a rerun looks ``submitting`` orders
up at the broker by client order id and sends only what the broker does not
have, so each id is one order at the broker and one row in the books. A broker
with batch calls (the simulator, :class:`~quant.execution.BatchBroker`) gets the
same steps a statement or a call each for all the run's orders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from quant import ledger
from quant.exceptions import BrokerError, BrokerUnavailableError, TradingHaltedError
from quant.execution._common import (
    BrokerHandle,
    run_info,
    time_in_force,
)
from quant.execution._gate import risk_gate
from quant.ledger import QTY_TOLERANCE
from quant.typing import BatchBroker, Broker, Order, OrderType, TimeInForce

if TYPE_CHECKING:
    from quant.config import Settings
    from quant.pipeline import RunContext

__all__ = ["submit_orders"]


def _is_reducing(order: Mapping[str, Any]) -> bool:
    current = float(order["current_qty_shares"])
    qty = float(order["qty_shares"])
    if order["side"] == "sell":
        return current > 0 and qty <= current + QTY_TOLERANCE
    return current < 0 and qty <= -current + QTY_TOLERANCE


def submit_orders(run: RunContext) -> dict[str, Any]:
    """Submit the run's approved orders (each client order id at most once).

    Before anything is sent, runs checked by the sidecar ask it for its health:
    unreachable, an error, or ``HALTED`` raises and nothing is submitted; in
    ``REDUCING`` only orders that shrink a position are sent (the others stay
    ``approved``). A dry run (the context's ``dry_run``, or a run generated as a dry run)
    sends nothing.

    Raises
    ------
    SidecarError
        The sidecar cannot be reached or answered with an error.
    ExecutionError
        Trading is HALTED.
    BrokerUnavailableError
        The broker kept failing; orders already sent stay recorded, the order
        in flight stays ``submitting`` and a rerun looks it up before resending.
    """
    settings, session = run.settings, run.session
    conn = run.connect()
    try:
        record = ledger.load_run(conn, run.dag_id, session, run.run_id)
        todo = ledger.orders(conn, record, ("approved", "submitting"))
        summary: dict[str, Any] = {**run_info(record), "dry_run": bool(run.dry_run or record["dry_run"])}
        with risk_gate(record, run) as gate:
            state = gate.trading_state()
        if state == "HALTED":
            raise TradingHaltedError(
                "the risk sidecar is HALTED: no order submitted (resume it, then rerun)"
            )
        held_back = []
        if state == "REDUCING":
            held_back = [o["client_order_id"] for o in todo if not _is_reducing(o)]
            todo = [o for o in todo if _is_reducing(o)]
        summary |= {"trading_state": state, "held_back": len(held_back)}
        if summary["dry_run"]:
            return summary | {
                "would_submit": len(todo),
                "submitted": 0,
                "statuses": ledger.status_counts(conn, record),
            }
        out = _Submission()
        if todo:
            with BrokerHandle(settings, record["broker"], record["account"], run.broker,
                              run.credentials) as b:
                if isinstance(b, BatchBroker):
                    _submit_batch(conn, b, todo, settings, out)
                else:
                    _submit_each(conn, b, todo, settings, out)
        return summary | {
            "submitted": out.submitted,
            "already_at_broker": out.found,
            "broker_rejected": out.refused,
            "errors": out.errors,
            "statuses": ledger.status_counts(conn, record),
        }
    finally:
        conn.close()


@dataclass
class _Submission:
    """What a submission did: orders placed, found at the broker already, refused."""

    submitted: int = 0
    found: int = 0
    refused: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)


def _order_of(row: Mapping[str, Any], settings: Settings) -> Order:
    """The broker order for a row of ``ops.orders``."""
    return Order(
        client_order_id=row["client_order_id"],
        symbol=row["symbol"],
        side=row["side"],
        qty_shares=float(row["qty_shares"]),
        order_type=OrderType(row["order_type"]),
        time_in_force=TimeInForce(row["time_in_force"]) if row["time_in_force"] else time_in_force(settings),
        strategy=settings.execution.strategy,
    )


def _submit_each(
    conn: Any,
    b: Broker,
    rows: Sequence[Mapping[str, Any]],
    settings: Settings,
    out: _Submission,
) -> None:
    """Submit order by order: each is marked ``submitting`` (committed) before it is sent."""
    for row in rows:
        cid = row["client_order_id"]
        if row["status"] == "submitting":
            existing = b.order_by_client_id(cid)
            if existing is not None:
                ledger.mark_submitted(conn, {cid: existing.order_id})
                out.found += 1
                continue
        else:
            ledger.mark_submitting(conn, [cid])
        order = _order_of(row, settings)
        try:
            placed = b.submit(order)
        except BrokerUnavailableError:
            raise
        except BrokerError as exc:
            existing = b.order_by_client_id(cid)
            if existing is not None:  # a duplicate: it is there already
                ledger.mark_submitted(conn, {cid: existing.order_id})
                out.found += 1
                continue
            out.refused += 1
            out.errors.append({"client_order_id": cid, "error": str(exc)})
            ledger.mark_broker_rejected(conn, cid, str(exc))
            continue
        ledger.mark_submitted(conn, {cid: placed.order_id})
        out.submitted += 1


def _submit_batch(
    conn: Any,
    b: Any,
    rows: Sequence[Mapping[str, Any]],
    settings: Settings,
    out: _Submission,
) -> None:
    """Submit in one call to a :class:`BatchBroker`, with the same guarantees as
    :func:`_submit_each`: orders left ``submitting`` by an interrupted run are
    looked up first (one call) and only the missing ones are sent; the others are
    marked ``submitting`` in one committed statement before the batch is sent, and
    ``submitted`` in one statement after. A batch the broker refuses (it places
    nothing) is retried order by order, so each refusal is recorded on its order.
    """
    inflight = [r["client_order_id"] for r in rows if r["status"] == "submitting"]
    there = b.orders_by_client_ids(inflight) if inflight else {}
    ledger.mark_submitted(conn, {cid: bo.order_id for cid, bo in there.items()})
    out.found += len(there)
    send = [r for r in rows if r["client_order_id"] not in there]
    if not send:
        return
    orders = [_order_of(r, settings) for r in send]
    fresh = [r["client_order_id"] for r in send if r["status"] != "submitting"]
    ledger.mark_submitting(conn, fresh)
    try:
        placed = b.submit_many(orders)
    except BrokerUnavailableError:
        raise
    except BrokerError:
        _submit_each(conn, b, [{**r, "status": "submitting"} for r in send], settings, out)
        return
    ledger.mark_submitted(conn, {o.client_order_id: o.order_id for o in placed})
    out.submitted += len(placed)
