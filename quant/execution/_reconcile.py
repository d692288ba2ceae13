"""The ``reconcile`` stage: the broker's statuses, fills and positions against the books.

Updates order statuses, records new fills and applies them to the positions
(:mod:`quant.ledger`), and compares with the broker's positions. A difference is
recorded as a reconciliation break, the symbol is set reduce-only at the
sidecar, and :class:`ReconciliationError` is raised; a symbol that matches again
has its lock cleared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from quant import ledger
from quant.exceptions import ReconciliationError
from quant.execution._broker import BatchBroker
from quant.execution._common import (
    DEFAULT_DAG_ID,
    BrokerHandle,
    as_date,
    connect,
    resolve_settings,
    run_info,
)
from quant.ledger import QTY_TOLERANCE
from quant.typing import BrokerOrder, OrderStatus

if TYPE_CHECKING:
    from quant.config import Settings
    from quant.execution._broker import Broker
    from quant.sidecar.client import SidecarClient

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


def reconcile(
    session: date | str,
    *,
    run_id: str,
    settings: Settings | None = None,
    broker: Broker | None = None,
    client: SidecarClient | None = None,
    dag_id: str = DEFAULT_DAG_ID,
    credentials: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
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
    settings = resolve_settings(settings)
    session = as_date(session)
    conn = connect(settings)
    try:
        run = ledger.load_run(conn, dag_id, session, run_id)
        if run["dry_run"]:  # sent nothing: the account's fills and positions are not its own
            return {
                **run_info(run),
                "orders_updated": 0,
                "new_fills": 0,
                "positions": None,
                "differences": [],
                "cleared_locks": [],
                "statuses": ledger.status_counts(conn, run),
            }
        name, account = run["broker"], run["account"]
        with BrokerHandle(settings, name, account, broker, credentials) as b:
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
        use_sidecar = run["risk_check"] == "sidecar"
        sidecar = None
        if use_sidecar and (differences or open_breaks):
            from quant.sidecar.client import SidecarClient

            sidecar = client or SidecarClient.from_settings(settings)
        try:
            for d in differences:
                d["locked"], d["lock_error"] = _lock(sidecar, d, session)
                if d["symbol"] not in open_breaks:
                    ledger.record_break(conn, name, account, session, run_id, d)
            cleared = []
            for symbol in sorted(open_breaks - {d["symbol"] for d in differences}):
                if sidecar is not None:
                    sidecar.set_override(
                        "symbol",
                        symbol,
                        reason="reconciliation: positions match again",
                        clear=True,
                        actor="reconcile",
                    )
                ledger.resolve_break(conn, name, account, symbol, run_id)
                cleared.append(symbol)
        finally:
            if sidecar is not None and client is None:
                sidecar.close()
        summary = {
            **run_info(run),
            "orders_updated": updated,
            "new_fills": new_fills,
            "positions": len(broker_positions),
            "differences": differences,
            "cleared_locks": cleared,
            "statuses": ledger.status_counts(conn, run),
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


def _lock(
    sidecar: SidecarClient | None, diff: Mapping[str, Any], session: date
) -> tuple[bool, str | None]:
    """Set the symbol reduce-only at the sidecar; (locked, error)."""
    from quant.exceptions import SidecarError

    if sidecar is None:
        return False, "no sidecar for this run (simulator account)"
    try:
        sidecar.set_override(
            "symbol",
            diff["symbol"],
            reduce_only=True,
            reason=(
                f"reconciliation {session}: ops.positions {diff['expected_qty_shares']:g} vs "
                f"broker {diff['broker_qty_shares']:g}"
            ),
            actor="reconcile",
        )
    except SidecarError as exc:
        return False, str(exc)
    return True, None
