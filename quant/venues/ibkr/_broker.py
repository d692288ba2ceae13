"""The IB broker adapter: an IB Gateway / TWS through ib_async (or ib_insync).

One API connection (``QUANT_IB_HOST``, ``QUANT_IB_PORT``,
``QUANT_EXECUTION__IB_CLIENT_ID``; paper Gateway port 4002 by default) is
opened lazily and reopened with exponential backoff when it drops, at most
``max_attempts`` times, then :class:`~quant.exceptions.BrokerUnavailableError`.
In paper mode a live port (4001, 7496) is refused, in live mode a paper port.

IB has no server-side client order id: the pipeline's id travels as the
order's ``orderRef``; :meth:`IbkrBroker.order_by_client_id` searches this
connection's trades, then all open and completed orders, by ``orderRef``.
Market orders go out with time in force ``OPG`` (opening auction) or as
``MOC`` (closing auction) to match ``QUANT_EXECUTION__FILL_AUCTION``.
``cancel_all`` is ``reqGlobalCancel``. Fills come from ``reqExecutions``
(commissions from the commission reports). Reads answered from the client's
caches (order statuses, positions, account values) first make a
``reqCurrentTime`` round trip, so that what the gateway pushed before (a fill,
a cancel) is applied: an order's status is current on the connection that
placed it.

The IB client runs on an event loop: every call of the adapter runs on one
worker thread of its own (with its own loop), so it can be called from any
thread, including from inside a running event loop (the sidecar's handlers).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from quant.exceptions import BrokerError, BrokerUnavailableError, ConfigurationError
from quant.typing import (
    Account,
    BrokerOrder,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Position,
    TimeInForce,
)
from quant.venues._retry import Backoff, Retryable
from quant.venues.ibkr._connection import (
    LIVE_PORTS,
    PAPER_PORTS,
    connect,
    ensure_event_loop,
    ib_module,
)

__all__ = ["IbkrBroker"]

_STATUS = {
    "PendingSubmit": OrderStatus.OPEN,
    "ApiPending": OrderStatus.OPEN,
    "PreSubmitted": OrderStatus.OPEN,
    "Submitted": OrderStatus.OPEN,
    "PendingCancel": OrderStatus.OPEN,
    "ApiCancelled": OrderStatus.CANCELLED,
    "Cancelled": OrderStatus.CANCELLED,
    "Filled": OrderStatus.FILLED,
    "Inactive": OrderStatus.REJECTED,
}


_F = TypeVar("_F", bound=Callable[..., Any])


def _on_ib_thread(method: _F) -> _F:
    """Run the method on the adapter's worker thread (directly when already there)."""

    @functools.wraps(method)
    def wrapper(self: IbkrBroker, *args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() == self._worker_ident:
            return method(self, *args, **kwargs)
        return self._worker.submit(method, self, *args, **kwargs).result()

    return wrapper  # type: ignore[return-value]


def _settle(ib: Any) -> None:
    """Bring the client's caches (trades and their statuses, positions, account
    values) up to what the gateway has sent so far, before answering from them.

    The client reads its socket only while its event loop runs, and between calls
    of the adapter it does not: a status the gateway pushed (a fill, a cancel) waits
    unread. One pass of the loop (``IB.sleep(0)``) is not enough: a message the
    gateway has sent may still be on its way (a small TCP segment held back until
    the previous one is acknowledged). A ``reqCurrentTime`` round trip is: its answer
    comes after everything the gateway sent before it, on the same ordered stream,
    and the client applies messages in order, so when ``IB.reqCurrentTime`` returns
    those are applied. It runs on the adapter's worker thread and loop like every
    request, and is bounded by the request timeout.

    Raises
    ------
    ConnectionError, TimeoutError
        The connection is closed or the gateway does not answer (the caller
        reconnects).
    """
    ib.reqCurrentTime()


class IbkrBroker:
    """An IB account through the TWS API; implements :class:`~quant.execution.Broker`.

    Parameters
    ----------
    host, port, client_id
        The API endpoint and this connection's client id (distinct from the
        market-data connection's).
    paper : bool
        Paper trading (refuses live ports) or live (refuses paper ports).
    account : str, optional
        Account code when the login manages several.
    max_attempts, backoff_s, max_backoff_s
        Connection attempts and the exponential backoff between them.
    timeout_s : float
        Timeout of the connection and of each request, seconds.
    sleep : callable
        How to wait between attempts (tests pass a recorder).
    """

    name = "ibkr"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 4002,
        client_id: int = 18,
        paper: bool = True,
        account: str = "",
        max_attempts: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        timeout_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        route: str = "SMART",
        currency: str = "USD",
    ) -> None:
        if paper and port in LIVE_PORTS:
            raise ConfigurationError(
                f"QUANT_IB_PORT={port} is a live trading port but the trading mode is paper"
            )
        if not paper and port in PAPER_PORTS:
            raise ConfigurationError(
                f"QUANT_IB_PORT={port} is a paper trading port but the trading mode is live"
            )
        self.retry = Backoff(
            max_attempts=max_attempts, backoff_s=backoff_s, max_backoff_s=max_backoff_s, sleep=sleep
        )
        self.host, self.port, self.client_id = host, int(port), int(client_id)
        self.paper = paper
        self.account_code = account
        self.timeout_s = timeout_s
        self.route = route
        self.currency = currency
        self._ib: Any = None
        self.connects = 0
        self._worker_ident: int | None = None
        self._worker = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="ibkr-broker", initializer=self._start_worker
        )

    def _start_worker(self) -> None:
        self._worker_ident = threading.get_ident()
        ensure_event_loop()

    def __repr__(self) -> str:
        return f"IbkrBroker(host={self.host!r}, port={self.port}, client_id={self.client_id})"

    # ------------------------------------------------------------------ connection
    def _conn(self) -> Any:
        if self._ib is not None and self._ib.isConnected():
            return self._ib
        ensure_event_loop()
        mod = ib_module()

        def attempt() -> Any:
            try:
                return connect(
                    mod,
                    self.host,
                    self.port,
                    client_id=self.client_id,
                    timeout_s=self.timeout_s,
                    request_timeout_s=self.timeout_s,  # no request may hang forever
                    account=self.account_code,
                )
            except (OSError, TimeoutError, ConnectionError) as exc:
                raise Retryable(f"{type(exc).__name__}: {exc}") from None

        self._ib = self.retry.run(
            attempt,
            lambda last: BrokerUnavailableError(
                f"ibkr: cannot connect to the IB API at {self.host}:{self.port} (client id "
                f"{self.client_id}) after {self.retry.max_attempts} attempts (last: {last})"
            ),
        )
        self.connects += 1
        return self._ib

    def _read(self, what: str, fn: Callable[[Any], Any]) -> Any:
        """Run a read with the connection, once the client has applied every message
        the gateway sent before it (:func:`_settle`); a dropped link or a timed-out request is
        retried once on a fresh connection, then BrokerUnavailableError."""
        last = ""
        for _ in range(2):
            ib = self._conn()
            try:
                _settle(ib)
                return fn(ib)
            except (ConnectionError, OSError, TimeoutError) as exc:
                last = f"{type(exc).__name__}: {exc}"
                self.close()
        raise BrokerUnavailableError(f"ibkr: {what} failed twice (last: {last})")

    @_on_ib_thread
    def close(self) -> None:
        if self._ib is not None:
            self._ib.disconnect()
            self._ib = None

    def _order_of(self, trade: Any) -> BrokerOrder:
        order, status = trade.order, trade.orderStatus
        now = datetime.now(UTC)
        submitted = trade.log[0].time if trade.log else now
        filled = float(status.filled or 0.0)
        state = _STATUS.get(status.status, OrderStatus.OPEN)
        if state is OrderStatus.OPEN and filled > 0:
            state = OrderStatus.PARTIALLY_FILLED
        tif = {"OPG": TimeInForce.OPG}.get(order.tif, TimeInForce.DAY)
        if order.orderType == "MOC":
            tif = TimeInForce.CLS
        return BrokerOrder(
            order_id=str(order.orderId or order.permId),
            client_order_id=str(order.orderRef or ""),
            symbol=str(trade.contract.symbol),
            side="buy" if order.action == "BUY" else "sell",
            qty_shares=float(order.totalQuantity),
            filled_qty_shares=filled,
            status=state,
            order_type=OrderType.LIMIT if order.orderType == "LMT" else OrderType.MARKET,
            time_in_force=tif,
            limit_price_usd=float(order.lmtPrice) if order.orderType == "LMT" else None,
            reduce_only=False,
            strategy=None,
            submitted_at=submitted,
            updated_at=trade.log[-1].time if trade.log else now,
            status_reason=status.status,
        )

    # ------------------------------------------------------------------ reads
    @_on_ib_thread
    def account(self) -> Account:
        account_values = self._read(
            "account values", lambda ib: ib.accountValues(self.account_code)
        )
        values = {
            v.tag: v.value
            for v in account_values
            if v.currency in ("USD", "BASE") and v.tag in ("NetLiquidation", "TotalCashValue")
        }
        if "NetLiquidation" not in values or "TotalCashValue" not in values:
            raise BrokerError("ibkr: the gateway sent no NetLiquidation / TotalCashValue")
        return Account(
            equity_usd=float(values["NetLiquidation"]), cash_usd=float(values["TotalCashValue"])
        )

    @_on_ib_thread
    def positions(self) -> list[Position]:
        portfolio, positions = self._read(
            "portfolio", lambda ib: (ib.portfolio(), ib.positions(self.account_code))
        )
        marks = {p.contract.symbol: p.marketPrice for p in portfolio}
        out = [
            Position(
                symbol=str(p.contract.symbol),
                qty_shares=float(p.position),
                avg_price_usd=float(p.avgCost),
                market_price_usd=float(marks.get(p.contract.symbol, 0.0) or 0.0),
            )
            for p in positions
            if p.position != 0
        ]
        return sorted(out, key=lambda p: p.symbol)

    @_on_ib_thread
    def open_orders(self) -> list[BrokerOrder]:
        trades = self._read("open orders", lambda ib: (ib.reqAllOpenOrders(), ib.openTrades())[1])
        return [self._order_of(t) for t in trades]

    def _find(self, client_order_id: str) -> Any:
        def search(ib: Any) -> Any:
            for trade in ib.trades():
                if trade.order.orderRef == client_order_id:
                    return trade
            for trade in list(ib.reqAllOpenOrders()) + list(ib.reqCompletedOrders(apiOnly=True)):
                if trade.order.orderRef == client_order_id:
                    return trade
            return None

        return self._read(f"order lookup {client_order_id!r}", search)

    @_on_ib_thread
    def order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        trade = self._find(client_order_id)
        return None if trade is None else self._order_of(trade)

    @_on_ib_thread
    def fills_since(self, since: datetime) -> list[Fill]:
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware (UTC)")
        mod = ib_module()
        flt = mod.ExecutionFilter(time=since.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S"))

        def executions(ib: Any) -> tuple[list[Any], dict[str, Any]]:
            fills = ib.reqExecutions(flt)
            # The client keeps one Fill per execution id (IB.fills()) and applies the
            # commission reports to that one; an execution it has seen before (live, or in
            # the reqExecutions of IB.connect) comes back from reqExecutions as a new Fill
            # whose commission report stays empty.
            return fills, {k.execution.execId: k.commissionReport for k in ib.fills()}

        out = []
        fills, reports = self._read("executions", executions)
        for f in fills:
            ex = f.execution
            filled_at = f.time if f.time.tzinfo else f.time.replace(tzinfo=UTC)
            if filled_at < since:
                continue
            report = reports.get(ex.execId) or f.commissionReport
            out.append(
                Fill(
                    fill_id=str(ex.execId),
                    order_id=str(ex.orderId or ex.permId),
                    client_order_id=str(ex.orderRef or ""),
                    symbol=str(f.contract.symbol),
                    side="buy" if ex.side == "BOT" else "sell",
                    qty_shares=float(ex.shares),
                    price_usd=float(ex.price),
                    commission_usd=float(report.commission or 0.0) if report else 0.0,
                    filled_at=filled_at,
                )
            )
        return sorted(out, key=lambda f: (f.filled_at, f.fill_id))

    # ------------------------------------------------------------------ writes
    @_on_ib_thread
    def submit(self, order: Order) -> BrokerOrder:
        """Place ``order`` with ``orderRef`` = its client order id.

        Raises
        ------
        BrokerError
            An order with this ``orderRef`` exists already (duplicate).
        BrokerUnavailableError
            The gateway cannot be reached.
        """
        if self._find(order.client_order_id) is not None:
            raise BrokerError(
                f"ibkr: duplicate client_order_id (orderRef) {order.client_order_id!r}"
            )
        mod = ib_module()
        ib = self._conn()
        contract = mod.Stock(order.symbol.upper(), self.route, self.currency)
        action = "BUY" if order.side == "buy" else "SELL"
        qty = float(order.qty_shares)
        if order.order_type is OrderType.LIMIT:
            ib_order = mod.LimitOrder(action, qty, order.limit_price_usd)
        elif order.time_in_force is TimeInForce.CLS:
            ib_order = mod.Order(action=action, totalQuantity=qty, orderType="MOC")
        else:
            ib_order = mod.MarketOrder(action, qty)
        ib_order.orderRef = order.client_order_id
        ib_order.tif = "OPG" if order.time_in_force is TimeInForce.OPG else "DAY"
        if self.account_code:
            ib_order.account = self.account_code
        trade = ib.placeOrder(contract, ib_order)
        ib.sleep(0)
        return self._order_of(trade)

    @_on_ib_thread
    def cancel(self, order_id: str) -> bool:
        self._read("order statuses", lambda ib: None)  # a fill sent already makes it done
        ib = self._conn()
        for trade in ib.trades():
            if str(trade.order.orderId) == str(order_id):
                if trade.isDone():
                    return False
                ib.cancelOrder(trade.order)
                return True
        raise BrokerError(f"ibkr: unknown order {order_id!r}")

    @_on_ib_thread
    def cancel_all(self) -> int:
        self._read("order statuses", lambda ib: None)
        ib = self._conn()
        live = len(ib.openTrades())
        ib.reqGlobalCancel()
        return live
