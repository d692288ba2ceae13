"""The ``reconcile`` stage: the broker's statuses, fills and positions against the books.

Updates order statuses, records new fills and applies them to the positions
(:mod:`quant.ledger`), and compares with the broker's positions. A difference is
recorded as a reconciliation break, the symbol is set reduce-only at the
sidecar, and :class:`ReconciliationError` is raised; a symbol that matches again
has its lock cleared.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from quant import ledger
from quant.exceptions import ReconciliationError
from quant.execution._common import (
    BrokerHandle,
    run_info,
)
from quant.execution._gate import risk_gate
from quant.ledger import QTY_TOLERANCE
from quant.typing import BatchBroker, BrokerOrder, OrderStatus

if TYPE_CHECKING:
    from quant.pipeline import RunContext

__all__ = ["reconcile"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_STATUS_OF = {
    OrderStatus.OPEN: "submitted",
    OrderStatus.PARTIALLY_FILLED: "partially_filled",
    OrderStatus.FILLED: "filled",
    OrderStatus.CANCELLED: "cancelled",
    OrderStatus.REJECTED: "broker_rejected",
}



def _updates(placed: Iterable[BrokerOrder]) -> list[tuple[str, str, float, str]]:
    """The books' view of broker orders: (client id, status, filled shares, broker id)."""
    return [
        (bo.client_order_id, _STATUS_OF[bo.status], bo.filled_qty_shares, bo.order_id)
        for bo in placed
    ]


def reconcile(run: RunContext) -> dict[str, Any]:
    """Record fills and compare the broker's positions with ``ops.positions``.

    Order statuses in ``ops.orders`` are refreshed from the broker, new fills
    are inserted into ``ops.fills`` (one row per broker fill id) and applied to
    ``ops.positions``. Every symbol whose quantities differ gets a row in
    ``ops.reconciliation_breaks`` and, for runs checked by the sidecar, a
    reduce-only override there; symbols whose earlier break now matches have
    their override cleared and the break resolved. A dry run's reconciliation
    touches neither the broker nor the books: it returns its orders' statuses.

    Raises
    ------
    ReconciliationError
        Some positions differ (after recording and locking them).
    """
    settings, session, run_id = run.settings, run.session, run.run_id
    conn = run.connect()
    try:
        record = ledger.load_run(conn, run.dag_id, session, run_id)
        if record["dry_run"]:  # sent nothing: the account's fills and positions are not its own
            return {
                **run_info(record),
                "orders_updated": 0,
                "new_fills": 0,
                "positions": None,
                "differences": [],
                "cleared_locks": [],
                "statuses": ledger.status_counts(conn, record),
            }
        name, account = record["broker"], record["account"]
        with BrokerHandle(settings, name, account, run.broker, run.credentials) as b:
            updated = 0
            live = ledger.live_order_ids(conn, name, account)
            if isinstance(b, BatchBroker):
                found = b.orders_by_client_ids(live)
                updated = ledger.refresh_orders(conn, _updates(found[cid] for cid in live if cid in found))
            else:
                for cid in live:
                    bo = b.order_by_client_id(cid)
                    if bo is not None:
                        updated += ledger.refresh_orders(conn, _updates([bo]))
            last = ledger.last_fill_at(conn, name, account)
            since = _EPOCH if last is None else last - timedelta(seconds=1)
            fills = b.fills_since(since)
            broker_positions = {p.symbol: float(p.qty_shares) for p in b.positions()}
        new_fills = len(ledger.record_fills(conn, name, account, fills))
        book = ledger.positions(conn, name, account)
        open_breaks = ledger.open_breaks(conn, name, account)
        differences = [
            {
                "symbol": s,
                "expected_qty_shares": book.get(s, 0.0),
                "broker_qty_shares": broker_positions.get(s, 0.0),
            }
            for s in sorted(set(book) | set(broker_positions))
            if abs(book.get(s, 0.0) - broker_positions.get(s, 0.0)) > QTY_TOLERANCE
        ]
        with risk_gate(record, run) as gate:
            for d in differences:
                d["locked"], d["lock_error"] = gate.lock(d, session)
                if d["symbol"] not in open_breaks:
                    ledger.record_break(conn, name, account, session, run_id, d)
            cleared = []
            for symbol in sorted(open_breaks - {d["symbol"] for d in differences}):
                gate.unlock(symbol)
                ledger.resolve_break(conn, name, account, symbol, run_id)
                cleared.append(symbol)
        summary = {
            **run_info(record),
            "orders_updated": updated,
            "new_fills": new_fills,
            "positions": len(broker_positions),
            "differences": differences,
            "cleared_locks": cleared,
            "statuses": ledger.status_counts(conn, record),
        }
        if differences:
            listed = ", ".join(
                f"{d['symbol']} ops.positions {d['expected_qty_shares']:g} vs broker "
                f"{d['broker_qty_shares']:g}" + (" (locked reduce-only)" if d["locked"] else "")
                for d in differences
            )
            raise ReconciliationError(
                f"reconciliation of {name} account {account!r} on {session}: "
                f"{len(differences)} position(s) differ: {listed}",
                differences,
            )
        return summary
    finally:
        conn.close()

