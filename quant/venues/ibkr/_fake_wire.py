"""The TWS API wire format as the IB Gateway fake speaks it.

Every message is a 4-byte big-endian length followed by NUL-terminated text
fields; the first field of a message is its id (:class:`IN` for the ones the
client sends, :class:`OUT` for the gateway's). A connection
(:class:`FakeIBConnection`) sends whole messages under a lock, so handlers on
different threads do not interleave them.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quant.venues.ibkr._fake import FakeIBGateway

__all__ = [
    "IN",
    "OUT",
    "SERVER_VERSION",
    "FakeIBConnection",
    "Handler",
    "commission_message",
    "encode",
    "execution_message",
    "messages",
    "stock",
]

SERVER_VERSION = 176
"""Server version the fake announces (ib_insync 0.9.86 accepts 157..176)."""


class IN:
    """Ids of messages the client sends."""

    PLACE_ORDER = 3
    CANCEL_ORDER = 4
    REQ_ALL_OPEN_ORDERS = 16
    REQ_GLOBAL_CANCEL = 58
    REQ_HISTORICAL_DATA = 20
    REQ_OPEN_ORDERS = 5
    REQ_ACCOUNT_UPDATES = 6
    REQ_EXECUTIONS = 7
    REQ_IDS = 8
    REQ_POSITIONS = 61
    START_API = 71
    REQ_ACCOUNT_UPDATES_MULTI = 76
    REQ_COMPLETED_ORDERS = 99
    CANCEL_HISTORICAL_DATA = 25
    REQ_CURRENT_TIME = 49


class OUT:
    """Ids of messages the gateway sends."""

    ORDER_STATUS = 3
    ACCT_VALUE = 6
    EXECUTION_DATA = 11
    COMMISSION_REPORT = 59
    POSITION_DATA = 61
    ERR_MSG = 4
    NEXT_VALID_ID = 9
    MANAGED_ACCOUNTS = 15
    HISTORICAL_DATA = 17
    OPEN_ORDER_END = 53
    ACCOUNT_DOWNLOAD_END = 54
    EXECUTION_DATA_END = 55
    POSITION_END = 62
    ACCOUNT_UPDATE_MULTI_END = 74
    COMPLETED_ORDERS_END = 102
    CURRENT_TIME = 49


Handler = Callable[["FakeIBConnection", list[str]], None]


def stock(con_id: int, symbol: str, exchange: str) -> tuple[Any, ...]:
    """A US stock's contract fields as execution and position messages carry them:
    conId, symbol, secType, lastTradeDate, strike, right, multiplier, exchange, currency."""
    return (con_id, symbol, "STK", "", 0.0, "", "", exchange, "USD")


def encode(fields: Iterable[Any]) -> bytes:
    text = "".join(f"{'' if f is None else f}\0" for f in fields)
    payload = text.encode()
    return struct.pack(">I", len(payload)) + payload


class FakeIBConnection:
    """One client connection; handlers answer through :meth:`send`."""

    def __init__(self, gateway: FakeIBGateway, sock: socket.socket) -> None:
        self.gateway = gateway
        self.sock = sock
        self.client_id: int | None = None
        self._lock = threading.Lock()

    def send(self, *fields: Any) -> None:
        """Send one message (its id first)."""
        with self._lock:
            self.sock.sendall(encode(fields))

    def error(self, req_id: int, code: int, message: str) -> None:
        """Send an error message for ``req_id``."""
        self.send(OUT.ERR_MSG, 2, req_id, code, message, "")


def messages(conn: FakeIBConnection) -> Iterator[list[str]]:
    """The fields of each message the client sends on ``conn``, until it disconnects.

    First the handshake: ``API\\0`` and the client's version range, answered with
    the server version and the connection time. A connection that does not open
    with it yields nothing.
    """
    sock = conn.sock
    buffer = b""

    def read_exact(n: int) -> bytes | None:
        nonlocal buffer
        while len(buffer) < n:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            buffer += chunk
        out, buffer = buffer[:n], buffer[n:]
        return out

    magic = read_exact(4)
    if magic != b"API\0":
        return
    size = read_exact(4)
    if size is None:
        return
    versions = read_exact(struct.unpack(">I", size)[0])
    if versions is None:
        return
    connected_at = time.strftime("%Y%m%d %H:%M:%S UTC", time.gmtime())
    conn.send(SERVER_VERSION, connected_at)
    while True:
        size = read_exact(4)
        if size is None:
            return
        payload = read_exact(struct.unpack(">I", size)[0])
        if payload is None:
            return
        fields = payload.decode(errors="replace").split("\0")
        if fields and fields[-1] == "":
            fields.pop()
        if not fields:
            continue
        yield fields


def execution_message(req_id: int, e: dict[str, Any], time_text: str) -> tuple[Any, ...]:
    """``execDetails`` for execution ``e`` (a :attr:`FakeIBGateway.executions` entry),
    its time written as ``time_text``."""
    # ib_insync decoder.execDetails at server version 176: reqId, orderId, 11 contract
    # fields, execId, time, acctNumber, exchange, side, shares, price, permId, clientId,
    # liquidation, cumQty, avgPrice, orderRef, evRule, evMultiplier, modelCode,
    # lastLiquidity
    symbol = e["symbol"]
    return (
        OUT.EXECUTION_DATA,
        req_id,
        e["order_id"],
        *stock(0, symbol, "ISLAND"),
        symbol,
        "NMS",
        e["exec_id"],
        time_text,
        e["account"],
        "ISLAND",
        e["side"],
        e["shares"],
        e["price"],
        e["perm_id"],
        e["client_id"],
        0,
        e["cum_qty"],
        e["avg_price"],
        e["order_ref"],
        "",
        "",
        "",
        1,
    )


def commission_message(e: dict[str, Any]) -> tuple[Any, ...]:
    """``commissionReport`` for execution ``e``."""
    # version, execId, commission, currency, realizedPNL, yield, yieldRedemptionDate
    return (OUT.COMMISSION_REPORT, 1, e["exec_id"], e["commission"], "USD", "", "", "")
