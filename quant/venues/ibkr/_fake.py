"""A local fake of the IB Gateway, speaking the TWS API socket protocol.

Enough of the protocol for ``ib_insync`` / ``ib_async`` ``IB.connect`` and
``IB.reqHistoricalData`` with daily bars: the handshake (``API\\0`` plus the
client's version range, answered with server version and connection
time), ``startApi`` (answered with ``nextValidId`` and
``managedAccounts``), the synchronisation requests ``IB.connect`` sends
(positions, open and completed orders, account updates: each answered
with its "end" message; executions: the recorded ones, see below) and ``reqHistoricalData`` (answered with
``historicalData`` for the symbols it knows and error 200 "no security
definition" for the others).

Wire format: every message is a 4-byte big-endian length followed by
NUL-terminated text fields; the first field of a message is its id
(:mod:`quant.venues.ibkr._fake_wire`).

Extending it (e.g. orders for the execution engineer): register a handler
for an incoming message id; it receives the connection and the fields and
answers with :meth:`FakeIBConnection.send`::

    fake = FakeIBGateway()

    @fake.handler(3)  # placeOrder
    def place(conn: FakeIBConnection, fields: list[str]) -> None:
        order_id = int(fields[1])
        fake.state.setdefault("orders", []).append(fields)
        conn.send(3, order_id, "Submitted", 0, 100, 0, 0, 0, 0, 1, "", 0)  # orderStatus

``reqCurrentTime`` is answered with ``currentTime`` (epoch seconds), after
everything sent before it, as TWS does.

Every message received is recorded in :attr:`FakeIBGateway.received` as
``(message id, fields)``.

For the ``ibkr`` broker adapter it also keeps a small account: positions
(:attr:`FakeIBGateway.positions`, sent on ``reqPositions``), account values
(:attr:`FakeIBGateway.account_values`, sent as ``updateAccountValue`` on
``reqAccountUpdates``), and orders: ``placeOrder`` is recorded in
:attr:`FakeIBGateway.orders` (with its ``orderRef``) and answered with
``orderStatus`` Submitted; ``cancelOrder`` and ``reqGlobalCancel`` answer
``orderStatus`` Cancelled for live orders.

Executions: :meth:`FakeIBGateway.fill` fills (part of) a placed order at a
price and time, as the exchange would: the order's filled quantity and
status (``Submitted`` while partly filled, then ``Filled``) and the
position (:attr:`FakeIBGateway.positions`) change, and the connection that
placed the order, if still open, is told at once, as TWS tells it:
``orderStatus``, ``execDetails`` (request id -1) and, when the fill has a
commission, ``commissionReport``. :meth:`FakeIBGateway.report_commission`
sends a commission later (TWS reports it a moment after the execution).
``reqExecutions`` answers ``execDetails`` for every recorded execution that
passes the request's filter, then ``commissionReport`` for those with a
commission, then ``execDetailsEnd``. Execution times go out as
``"YYYYMMDD HH:MM:SS <zone>"`` in :attr:`FakeIBGateway.time_zone` (as TWS
sends them, in the zone of its login), which the client converts to UTC.
Orders are not replayed to new connections (``reqAllOpenOrders`` and
``reqCompletedOrders`` answer only their "end" message), so a connection
sees the status of the orders it placed itself.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from quant.venues._fake_server import ThreadedFakeServer
from quant.venues.ibkr._fake_wire import (
    IN,
    OUT,
    FakeIBConnection,
    Handler,
    commission_message,
    execution_message,
    messages,
    stock,
)

__all__ = ["FakeIBConnection", "FakeIBGateway", "IN", "OUT"]


class FakeIBGateway(ThreadedFakeServer):
    """A threaded TCP server on 127.0.0.1 acting as an IB Gateway.

    Parameters
    ----------
    bars : mapping of str to iterable of tuple, optional
        Symbol to daily bars ``(date, open, high, low, close, volume)``.
    account : str, default "DU1234567"
        The managed (paper) account announced at connection.
    next_valid_id : int, default 1
        First order id announced.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        bars: dict[str, Iterable[tuple[date, float, float, float, float, float]]] | None = None,
        *,
        account: str = "DU1234567",
        next_valid_id: int = 1,
        port: int = 0,
    ) -> None:
        self.bars: dict[str, list[tuple]] = {k: sorted(v) for k, v in (bars or {}).items()}
        self.account = account
        self.next_valid_id = next_valid_id
        self.received: list[tuple[int, list[str]]] = []
        self.state: dict[str, Any] = {}
        self.connections = 0
        self.requested_port = port
        self.positions: dict[str, tuple[float, float]] = {}
        """Symbol -> (signed shares, average cost), sent on reqPositions."""
        self.account_values: dict[str, float] = {"NetLiquidation": 0.0, "TotalCashValue": 0.0}
        """Account tags (USD) sent as updateAccountValue on reqAccountUpdates."""
        self.orders: dict[int, dict[str, Any]] = {}
        """Order id -> {"symbol", "action", "qty", "order_type", "tif", "order_ref", "status",
        "filled", "avg_fill_price", "last_fill_price", "perm_id", "account", "client_id"}."""
        self.executions: list[dict[str, Any]] = []
        """Every execution, oldest first: {"exec_id", "order_id", "perm_id", "client_id",
        "account", "symbol", "side" (BOT / SLD), "shares", "price", "time" (UTC),
        "cum_qty", "avg_price", "order_ref", "commission" (None until reported)}."""
        self.time_zone = "US/Eastern"
        """Zone in which execution times are sent (the TWS login's zone)."""
        self._conns: dict[int, FakeIBConnection] = {}
        self._handlers: dict[int, Handler] = {}
        self._lock = threading.Lock()
        defaults: dict[int, Handler] = {
            IN.START_API: self._start_api,
            IN.REQ_POSITIONS: self._positions,
            IN.PLACE_ORDER: self._place_order,
            IN.CANCEL_ORDER: self._cancel_order,
            IN.REQ_GLOBAL_CANCEL: self._global_cancel,
            IN.REQ_OPEN_ORDERS: lambda c, f: c.send(OUT.OPEN_ORDER_END, 1),
            IN.REQ_ALL_OPEN_ORDERS: lambda c, f: c.send(OUT.OPEN_ORDER_END, 1),
            IN.REQ_COMPLETED_ORDERS: lambda c, f: c.send(OUT.COMPLETED_ORDERS_END),
            IN.REQ_ACCOUNT_UPDATES: self._account_updates,
            IN.REQ_ACCOUNT_UPDATES_MULTI: lambda c, f: c.send(
                OUT.ACCOUNT_UPDATE_MULTI_END, 1, f[2]
            ),
            IN.REQ_EXECUTIONS: self._executions,
            IN.REQ_IDS: lambda c, f: c.send(OUT.NEXT_VALID_ID, 1, self.next_valid_id),
            IN.REQ_HISTORICAL_DATA: self._historical_data,
            IN.CANCEL_HISTORICAL_DATA: lambda c, f: None,
            IN.REQ_CURRENT_TIME: lambda c, f: c.send(OUT.CURRENT_TIME, 1, int(time.time())),
        }
        self._handlers.update(defaults)

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeIBGateway is not started")
        return int(self._server.server_address[1])

    host = "127.0.0.1"

    def start(self) -> FakeIBGateway:
        gateway = self

        class _Session(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                gateway._serve(self.request)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._serve_in_thread(
            socketserver.ThreadingTCPServer((self.host, self.requested_port), _Session),
            "fake-ib-gateway",
        )
        return self

    # ------------------------------------------------------------------ extension

    def handler(self, message_id: int) -> Callable[[Handler], Handler]:
        """Register (or replace) the handler of an incoming message id."""

        def register(fn: Handler) -> Handler:
            self._handlers[message_id] = fn
            return fn

        return register

    def received_of(self, message_id: int) -> list[list[str]]:
        """Fields of every received message with that id."""
        return [fields for mid, fields in self.received if mid == message_id]

    # ------------------------------------------------------------------ executions

    def fill(
        self,
        order_id: int,
        qty: float,
        price: float,
        *,
        commission: float | None = None,
        at: datetime | None = None,
        exec_id: str | None = None,
    ) -> str:
        """Execute ``qty`` shares of a placed order at ``price``; returns the execution id.

        The order's filled quantity and status and :attr:`positions` follow.

        Parameters
        ----------
        order_id : int
            Id of an order received through ``placeOrder``, still live.
        qty : float
            Shares executed, at most what remains of the order.
        price : float
            Execution price.
        commission : float, optional
            Commission of this execution; ``None``: not reported yet (see
            :meth:`report_commission`).
        at : datetime, optional
            Timezone-aware execution time; default now.
        exec_id : str, optional
            Execution id; default ``"<permId hex>.<sequence hex>.01.01"`` like TWS's.

        Raises
        ------
        KeyError
            Unknown order id.
        ValueError
            The order is not live, ``qty`` is not positive or exceeds what remains,
            ``at`` is naive, or ``exec_id`` is taken.
        """
        at = datetime.now(UTC) if at is None else at
        if at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        with self._lock:
            order = self.orders[order_id]
            if order["status"] not in ("Submitted", "PreSubmitted"):
                raise ValueError(f"order {order_id} is {order['status']}, not live")
            remaining = order["qty"] - order["filled"]
            if not 0 < qty <= remaining + 1e-9:
                raise ValueError(f"order {order_id}: cannot fill {qty} of {remaining} remaining")
            exec_id = exec_id or f"{order['perm_id']:08x}.{len(self.executions) + 1:08x}.01.01"
            if any(e["exec_id"] == exec_id for e in self.executions):
                raise ValueError(f"execution id {exec_id!r} exists already")
            cum = order["filled"] + qty
            avg = (order["avg_fill_price"] * order["filled"] + price * qty) / cum
            order.update(
                filled=cum,
                avg_fill_price=avg,
                last_fill_price=price,
                status="Filled" if cum >= order["qty"] - 1e-9 else "Submitted",
            )
            execution = {
                "exec_id": exec_id,
                "order_id": order_id,
                "perm_id": order["perm_id"],
                "client_id": order["client_id"] or 0,
                "account": order["account"],
                "symbol": order["symbol"],
                "side": "BOT" if order["action"] == "BUY" else "SLD",
                "shares": float(qty),
                "price": float(price),
                "time": at.astimezone(UTC),
                "cum_qty": cum,
                "avg_price": avg,
                "order_ref": order["order_ref"],
                "commission": None if commission is None else float(commission),
            }
            self.executions.append(execution)
            self._book(order["symbol"], qty if order["action"] == "BUY" else -qty, price)
            conn = self._conns.get(order["client_id"])
        if conn is not None:  # TWS tells the placing client at once
            self._tell(conn, lambda: self._order_status(conn, order_id))
            self._tell(conn, lambda: self._send_execution(conn, -1, execution))
            if commission is not None:
                self._tell(conn, lambda: self._send_commission(conn, execution))
        return exec_id

    def report_commission(self, exec_id: str, commission: float) -> None:
        """Report the commission of an execution (sent to the placing client if connected)."""
        with self._lock:
            [execution] = [e for e in self.executions if e["exec_id"] == exec_id]
            execution["commission"] = float(commission)
            conn = self._conns.get(execution["client_id"])
        if conn is not None:
            self._tell(conn, lambda: self._send_commission(conn, execution))

    def _book(self, symbol: str, signed_qty: float, price: float) -> None:
        """Apply an execution to :attr:`positions` (average cost of the open quantity)."""
        qty, avg = self.positions.get(symbol, (0.0, 0.0))
        new_qty = qty + signed_qty
        if abs(new_qty) < 1e-9:
            self.positions.pop(symbol, None)
            return
        if qty == 0 or (qty > 0) != (new_qty > 0):  # opened, or flipped side
            avg = price
        elif abs(new_qty) > abs(qty):  # added to the position
            avg = (qty * avg + signed_qty * price) / new_qty
        self.positions[symbol] = (new_qty, avg)

    @staticmethod
    def _tell(conn: FakeIBConnection, send: Callable[[], None]) -> None:
        try:
            send()
        except OSError:  # the client went away meanwhile
            pass

    def _time_text(self, moment: datetime) -> str:
        local = moment.astimezone(ZoneInfo(self.time_zone))
        return f"{local:%Y%m%d %H:%M:%S} {self.time_zone}"

    def _send_execution(self, conn: FakeIBConnection, req_id: int, e: dict[str, Any]) -> None:
        conn.send(*execution_message(req_id, e, self._time_text(e["time"])))

    def _send_commission(self, conn: FakeIBConnection, e: dict[str, Any]) -> None:
        conn.send(*commission_message(e))

    def _execution_filter_time(self, text: str) -> datetime | None:
        """``yyyymmdd-hh:mm:ss`` is UTC; ``yyyymmdd hh:mm:ss [zone]`` is in the zone
        given, else in the login's zone (:attr:`time_zone`)."""
        if not text:
            return None
        if "-" in text:
            return datetime.strptime(text, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
        day, clock, *zone = text.split()
        naive = datetime.strptime(f"{day} {clock}", "%Y%m%d %H:%M:%S")
        return naive.replace(tzinfo=ZoneInfo(zone[0] if zone else self.time_zone))

    def _executions(self, conn: FakeIBConnection, fields: list[str]) -> None:
        # 7, version, reqId, clientId, acctCode, time, symbol, secType, exchange, side.
        # TWS returns the executions "reported after the specified time"; its clock has
        # whole seconds, so the fake keeps those at or after the filter's second.
        req_id = int(fields[2])
        padded = [*fields[3:10], *[""] * 7]
        client_id, account, time_text, symbol, sec_type, exchange, side = padded[:7]
        after = self._execution_filter_time(time_text)
        side = {"BUY": "BOT", "SELL": "SLD"}.get(side.upper(), side.upper())
        with self._lock:
            chosen = [
                e
                for e in self.executions
                if (not client_id or int(client_id) == 0 or int(client_id) == e["client_id"])
                and (not account or account == e["account"])
                and (after is None or e["time"].replace(microsecond=0) >= after)
                and (not symbol or symbol == e["symbol"])
                and (not sec_type or sec_type == "STK")
                and (not exchange or exchange == "ISLAND")
                and (not side or side == e["side"])
            ]
        for e in chosen:
            self._send_execution(conn, req_id, e)
        for e in chosen:
            if e["commission"] is not None:
                self._send_commission(conn, e)
        conn.send(OUT.EXECUTION_DATA_END, 1, req_id)

    # ------------------------------------------------------------------ protocol

    def _serve(self, sock: socket.socket) -> None:
        with self._lock:
            self.connections += 1
        conn = FakeIBConnection(self, sock)
        try:
            self._session(conn)
        finally:
            with self._lock:
                if conn.client_id is not None and self._conns.get(conn.client_id) is conn:
                    del self._conns[conn.client_id]

    def _session(self, conn: FakeIBConnection) -> None:
        for fields in messages(conn):
            message_id = int(fields[0])
            with self._lock:
                self.received.append((message_id, fields))
            handler = self._handlers.get(message_id)
            if handler is not None:
                handler(conn, fields)

    def _start_api(self, conn: FakeIBConnection, fields: list[str]) -> None:
        conn.client_id = int(fields[2])
        with self._lock:
            self._conns[conn.client_id] = conn
        conn.send(OUT.NEXT_VALID_ID, 1, self.next_valid_id)
        conn.send(OUT.MANAGED_ACCOUNTS, 1, self.account)

    def _account_updates(self, conn: FakeIBConnection, fields: list[str]) -> None:
        # fields: 6, version, subscribe, account
        for tag, value in self.account_values.items():
            conn.send(OUT.ACCT_VALUE, 2, tag, value, "USD", self.account)
        conn.send(OUT.ACCOUNT_DOWNLOAD_END, 1, fields[3] if len(fields) > 3 else self.account)

    def _positions(self, conn: FakeIBConnection, fields: list[str]) -> None:
        for con_id, (symbol, (qty, avg_cost)) in enumerate(sorted(self.positions.items()), 1):
            conn.send(
                OUT.POSITION_DATA,
                3,
                self.account,
                *stock(con_id, symbol, "SMART"),
                symbol,
                symbol,
                qty,
                avg_cost,
            )
        conn.send(OUT.POSITION_END, 1)

    def _order_status(self, conn: FakeIBConnection, order_id: int) -> None:
        order = self.orders[order_id]
        conn.send(
            OUT.ORDER_STATUS,
            order_id,
            order["status"],
            order["filled"],
            order["qty"] - order["filled"],
            order["avg_fill_price"],
            order["perm_id"],
            0,
            order["last_fill_price"],
            order["client_id"] or 0,
            "",
            0,
        )

    def _place_order(self, conn: FakeIBConnection, fields: list[str]) -> None:
        # 3, orderId, 12 contract fields, secIdType, secId, action, totalQuantity, orderType,
        # lmtPrice, auxPrice, tif, ocaGroup, account, openClose, origin, orderRef, ...
        order_id = int(fields[1])
        with self._lock:
            self.orders[order_id] = {
                "symbol": fields[3],
                "action": fields[16],
                "qty": float(fields[17]),
                "order_type": fields[18],
                "tif": fields[21],
                "order_ref": fields[26],
                "status": "Submitted",
                "client_id": conn.client_id,
                "account": fields[23] or self.account,
                "perm_id": 1000 + order_id,
                "filled": 0.0,
                "avg_fill_price": 0.0,
                "last_fill_price": 0.0,
            }
        self._order_status(conn, order_id)

    def _cancel_order(self, conn: FakeIBConnection, fields: list[str]) -> None:
        order_id = int(fields[2])
        order = self.orders.get(order_id)
        if order is None:
            conn.error(order_id, 135, "Can't find order with id")
            return
        if order["status"] in ("Submitted", "PreSubmitted"):
            order["status"] = "Cancelled"
        self._order_status(conn, order_id)

    def _global_cancel(self, conn: FakeIBConnection, fields: list[str]) -> None:
        for order_id, order in sorted(self.orders.items()):
            if order["status"] in ("Submitted", "PreSubmitted"):
                order["status"] = "Cancelled"
                if order.get("client_id") == conn.client_id:
                    self._order_status(conn, order_id)

    def _historical_data(self, conn: FakeIBConnection, fields: list[str]) -> None:
        # 20, reqId, 12 contract fields, includeExpired, endDateTime, barSize, duration,
        # useRTH, whatToShow, formatDate, keepUpToDate, chartOptions
        req_id = int(fields[1])
        symbol = fields[3]
        end_text, bar_size, duration, _rth, what = fields[15:20]
        if bar_size != "1 day" or what != "TRADES":
            conn.error(req_id, 321, f"fake gateway serves only 1 day TRADES, got {bar_size} {what}")
            return
        if symbol not in self.bars:
            conn.error(req_id, 200, "No security definition has been found for the request")
            return
        end = date(int(end_text[:4]), int(end_text[4:6]), int(end_text[6:8])) if end_text else None
        count, unit = duration.split()
        days = int(count) * {"D": 1, "W": 7, "M": 31, "Y": 366}[unit]
        end = end or date.max
        start = end - timedelta(days=days)
        rows = [b for b in self.bars[symbol] if start < b[0] <= end]
        out: list[Any] = [OUT.HISTORICAL_DATA, req_id, "", "", len(rows)]
        for day, o, h, low, c, v in rows:
            out += [day.strftime("%Y%m%d"), o, h, low, c, v, (h + low + c) / 3, 100]
        conn.send(*out)
