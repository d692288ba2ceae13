"""A local fake of Alpaca's HTTP APIs, for tests through the real alpaca-py client.

It serves, on ``127.0.0.1`` and a free port, the market-data endpoints the
``alpaca`` provider uses:

* ``GET /v2/stocks/bars`` (daily bars, ``symbols``, ``start``, ``end``,
  ``limit``, ``page_token``; answers ``{"bars": {SYM: [...]},
  "next_page_token": ...}`` with pages of ``page_size`` bars);
* ``GET /v1/corporate-actions`` (``forward_splits``, ``reverse_splits``,
  ``cash_dividends``, paginated the same way).

the trading endpoints the ``alpaca`` broker adapter uses (an in-memory
account: :attr:`FakeAlpaca.orders`, :attr:`FakeAlpaca.positions`,
:attr:`FakeAlpaca.cash`; fills only when a test calls :meth:`FakeAlpaca.fill`):

* ``POST /v2/orders`` (a second order with the same ``client_order_id`` is
  refused with HTTP 422, like Alpaca), ``GET /v2/orders``,
  ``GET /v2/orders:by_client_order_id``, ``GET /v2/orders/{id}``,
  ``DELETE /v2/orders`` (207, one entry per cancelled order),
  ``DELETE /v2/orders/{id}`` (204; 422 when no longer cancelable);
* ``GET /v2/positions``, ``GET /v2/account``,
  ``GET /v2/account/activities/FILL``;

and can inject failures (:meth:`FakeAlpaca.fail_next`: a 429 with
``Retry-After``, a 5xx, ..., before or after the request took effect, and
:meth:`FakeAlpaca.delay_next`: the request takes effect but the answer comes
too late for the client's timeout). Every request is recorded in
:attr:`FakeAlpaca.requests`.

Extending it: register a handler for a method and path, keeping state in
:attr:`FakeAlpaca.state`::

    fake = FakeAlpaca(api_key="k", secret_key="s")

    @fake.route("GET", "/v2/account")
    def account(request: FakeRequest) -> FakeResponse:
        return FakeResponse(200, {"id": "acct", "cash": "100000"})

    @fake.route("DELETE", "/v2/orders/{order_id}")
    def cancel(request: FakeRequest) -> FakeResponse:
        fake.state.setdefault("cancelled", []).append(request.path_params["order_id"])
        return FakeResponse(204, None)

or subclass it and register routes in ``__init__``. Path templates match
``{name}`` segments into :attr:`FakeRequest.path_params`; the JSON body of
a POST/PATCH is :attr:`FakeRequest.json`. The HTTP side (routes, injected
failures, the threaded server) is :mod:`quant.venues.alpaca._fake_http`.
"""

from __future__ import annotations

import base64
import threading
import time as _time
import uuid
from collections.abc import Iterable
from datetime import date, datetime, time, timezone
from typing import Any
from zoneinfo import ZoneInfo

from quant.venues.alpaca._fake_http import Failure, FakeRequest, FakeResponse, RoutedHTTPFake

__all__ = ["FakeAlpaca", "FakeRequest", "FakeResponse", "Failure"]

_NEW_YORK = ZoneInfo("America/New_York")


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    return int(base64.urlsafe_b64decode(token.encode()).decode().split(":", 1)[1])


def _instant(value: str) -> datetime:
    """An Alpaca ``start``/``end`` value (RFC 3339 time, or a date = midnight UTC) as UTC."""
    if len(value) == 10:
        return datetime.combine(date.fromisoformat(value), time(0), tzinfo=timezone.utc)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _bar_instant(day: date) -> datetime:
    """Alpaca's time of a daily bar: midnight New York."""
    return datetime.combine(day, time(0), tzinfo=_NEW_YORK).astimezone(timezone.utc)


def _bar_time(day: date) -> str:
    """Alpaca's timestamp of a daily bar: midnight New York, in UTC."""
    return _bar_instant(day).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeAlpaca(RoutedHTTPFake):
    """A threaded local HTTP server speaking a subset of Alpaca's APIs.

    Parameters
    ----------
    api_key, secret_key : str
        Credentials every request must carry (``APCA-API-KEY-ID`` and
        ``APCA-API-SECRET-KEY`` headers); otherwise 401.
    bars : iterable of dict, optional
        Daily bars with keys ``symbol``, ``date`` (datetime.date), ``open``,
        ``high``, ``low``, ``close``, ``volume``.
    actions : iterable of dict, optional
        Corporate actions: ``{"kind": "forward_splits" | "reverse_splits" |
        "cash_dividends", "symbol": ..., "ex_date": date, ...}`` plus the
        fields of that kind (``new_rate``/``old_rate`` or ``rate``).
    page_size : int, default 1000
        Most items per page (also capped by the request's ``limit``).

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    thread_name = "fake-alpaca"

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        secret_key: str = "test-secret",
        bars: Iterable[dict[str, Any]] = (),
        actions: Iterable[dict[str, Any]] = (),
        page_size: int = 1000,
        cash: float = 100_000.0,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.secret_key = secret_key
        self.bars: list[dict[str, Any]] = list(bars)
        self.actions: list[dict[str, Any]] = list(actions)
        self.page_size = page_size
        self.route("GET", "/v2/stocks/bars")(self._stock_bars)
        self.route("GET", "/v1/corporate-actions")(self._corporate_actions)
        # trading account
        self.cash = float(cash)
        self.orders: dict[str, dict[str, Any]] = {}
        """Order id -> the order as Alpaca would answer it."""
        self.positions: dict[str, dict[str, float]] = {}
        """Symbol -> ``{"qty", "avg_entry_price", "current_price"}`` (qty signed)."""
        self.activities: list[dict[str, Any]] = []
        self._trade_lock = threading.RLock()
        self.route("POST", "/v2/orders")(self._submit_order)
        self.route("GET", "/v2/orders")(self._list_orders)
        self.route("DELETE", "/v2/orders")(self._cancel_orders)
        self.route("GET", "/v2/orders:by_client_order_id")(self._order_by_client_id)
        self.route("GET", "/v2/orders/{order_id}")(self._get_order)
        self.route("DELETE", "/v2/orders/{order_id}")(self._cancel_order)
        self.route("GET", "/v2/positions")(self._list_positions)
        self.route("GET", "/v2/account")(self._account)
        self.route("GET", "/v2/account/activities/FILL")(self._fill_activities)

    def _refuse(self, request: FakeRequest) -> FakeResponse | None:
        """Every request must carry the fake's credentials (``APCA-API-KEY-ID`` and
        ``APCA-API-SECRET-KEY``); otherwise 401, before any injected failure."""
        if request.headers.get("apca-api-key-id") != self.api_key or (
            request.headers.get("apca-api-secret-key") != self.secret_key
        ):
            return FakeResponse(401, {"code": 40110000, "message": "request is not authorized"})
        return None

    # ------------------------------------------------------------------ market data

    def _page(self, items: list[Any], query: dict[str, str]) -> tuple[list[Any], str | None]:
        start = _offset(query.get("page_token"))
        size = self.page_size
        if query.get("limit"):
            size = min(size, int(query["limit"]))
        page = items[start : start + size]
        more = start + size < len(items)
        return page, _token(start + size) if more else None

    def _stock_bars(self, request: FakeRequest) -> FakeResponse:
        query = request.query
        if query.get("timeframe") not in ("1Day", "1D"):
            return FakeResponse(422, {"code": 42210000, "message": "only 1Day is faked"})
        if query.get("adjustment", "raw") != "raw":
            return FakeResponse(422, {"code": 42210000, "message": "only raw is faked"})
        symbols = [s for s in query.get("symbols", "").split(",") if s]
        if not symbols:
            return FakeResponse(400, {"code": 40010001, "message": "symbols is required"})
        lo = _instant(query["start"]) if query.get("start") else None
        hi = _instant(query["end"]) if query.get("end") else None
        wanted = set(symbols)
        rows = sorted(
            (
                b
                for b in self.bars
                if b["symbol"] in wanted
                and (lo is None or lo <= _bar_instant(b["date"]))
                and (hi is None or _bar_instant(b["date"]) <= hi)
            ),
            key=lambda b: (b["symbol"], b["date"]),
        )
        page, token = self._page(rows, query)
        out: dict[str, list[dict[str, Any]]] = {}
        for b in page:
            out.setdefault(b["symbol"], []).append(
                {
                    "t": _bar_time(b["date"]),
                    "o": b["open"],
                    "h": b["high"],
                    "l": b["low"],
                    "c": b["close"],
                    "v": b["volume"],
                    "n": 1000,
                    "vw": (b["high"] + b["low"] + b["close"]) / 3,
                }
            )
        return FakeResponse(200, {"bars": out, "next_page_token": token, "currency": "USD"})

    def _corporate_actions(self, request: FakeRequest) -> FakeResponse:
        query = request.query
        symbols = {s for s in query.get("symbols", "").split(",") if s}
        types = {t for t in query.get("types", "").split(",") if t}
        lo = date.fromisoformat(query["start"]) if query.get("start") else date.min
        hi = date.fromisoformat(query["end"]) if query.get("end") else date.max
        kind_of = {
            "forward_splits": "forward_split",
            "reverse_splits": "reverse_split",
            "cash_dividends": "cash_dividend",
        }
        rows = [
            a
            for a in self.actions
            if (not symbols or a["symbol"] in symbols)
            and (not types or kind_of[a["kind"]] in types)
            and lo <= a["ex_date"] <= hi
        ]
        rows.sort(key=lambda a: (a["ex_date"], a["symbol"], a["kind"]))
        page, token = self._page(rows, query)
        out: dict[str, list[dict[str, Any]]] = {}
        for a in page:
            item = {k: v for k, v in a.items() if k != "kind"}
            for key in ("ex_date", "process_date", "record_date", "payable_date"):
                if isinstance(item.get(key), date):
                    item[key] = item[key].isoformat()
            item.setdefault("process_date", item["ex_date"])
            item.setdefault("cusip", "000000000")
            item.setdefault("corporate_action_type", kind_of[a["kind"]])
            out.setdefault(a["kind"], []).append(item)
        return FakeResponse(200, {"corporate_actions": out, "next_page_token": token})

    # ------------------------------------------------------------------ trading

    @staticmethod
    def _now() -> str:
        return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")

    def orders_by_client_id(self) -> dict[str, list[dict[str, Any]]]:
        """Client order id -> every order the account holds with it (at most one)."""
        out: dict[str, list[dict[str, Any]]] = {}
        with self._trade_lock:
            for order in self.orders.values():
                out.setdefault(order["client_order_id"], []).append(dict(order))
        return out

    def set_position(
        self, symbol: str, qty: float, avg_entry_price: float, current_price: float | None = None
    ) -> None:
        """Put a position in the account directly (e.g. a trade made outside the pipeline)."""
        with self._trade_lock:
            if qty == 0:
                self.positions.pop(symbol, None)
                return
            self.positions[symbol] = {
                "qty": float(qty),
                "avg_entry_price": float(avg_entry_price),
                "current_price": float(current_price or avg_entry_price),
            }

    def fill(self, prices: dict[str, float], *, fraction: float = 1.0) -> list[dict[str, Any]]:
        """Fill open orders of the priced symbols (``fraction`` of what remains, whole
        shares) at those prices; returns the fill activities."""
        made = []
        with self._trade_lock:
            for order in sorted(self.orders.values(), key=lambda o: o["created_at"]):
                if order["status"] not in ("new", "accepted", "partially_filled"):
                    continue
                price = prices.get(order["symbol"])
                if price is None:
                    continue
                qty, done = float(order["qty"]), float(order["filled_qty"])
                take = float(int((qty - done) * fraction)) if fraction < 1 else qty - done
                if take <= 0:
                    continue
                signed = take if order["side"] == "buy" else -take
                old_avg = float(order["filled_avg_price"] or 0.0)
                order["filled_qty"] = str(done + take)
                order["filled_avg_price"] = str((old_avg * done + price * take) / (done + take))
                order["status"] = "filled" if done + take >= qty else "partially_filled"
                order["updated_at"] = self._now()
                if order["status"] == "filled":
                    order["filled_at"] = order["updated_at"]
                self.cash -= signed * price
                pos = self.positions.get(order["symbol"])
                old_qty = 0.0 if pos is None else pos["qty"]
                new_qty = old_qty + signed
                if new_qty == 0:
                    self.positions.pop(order["symbol"], None)
                else:
                    avg = price
                    if pos is not None and (old_qty > 0) == (new_qty > 0):
                        avg = (
                            (pos["avg_entry_price"] * abs(old_qty) + price * take) / abs(new_qty)
                            if abs(new_qty) > abs(old_qty)
                            else pos["avg_entry_price"]
                        )
                    self.positions[order["symbol"]] = {
                        "qty": new_qty,
                        "avg_entry_price": avg,
                        "current_price": price,
                    }
                activity = {
                    "id": f"{_time.strftime('%Y%m%d%H%M%S')}000::{uuid.uuid4()}",
                    "activity_type": "FILL",
                    "transaction_time": order["updated_at"],
                    "type": "fill" if order["status"] == "filled" else "partial_fill",
                    "price": str(price),
                    "qty": str(take),
                    "side": order["side"],
                    "symbol": order["symbol"],
                    "leaves_qty": str(qty - done - take),
                    "order_id": order["id"],
                    "cum_qty": order["filled_qty"],
                    "order_status": order["status"],
                }
                self.activities.append(activity)
                made.append(activity)
        return made

    def _submit_order(self, request: FakeRequest) -> FakeResponse:
        body = request.json or {}
        missing = [k for k in ("symbol", "side", "type", "time_in_force") if not body.get(k)]
        if missing:
            return FakeResponse(422, {"code": 40010001, "message": f"{missing[0]} is required"})
        try:
            qty = float(body.get("qty", ""))
        except ValueError:
            return FakeResponse(422, {"code": 40010001, "message": "qty must be a number"})
        if qty <= 0:
            return FakeResponse(422, {"code": 40010001, "message": "qty must be > 0"})
        client_id = body.get("client_order_id") or str(uuid.uuid4())
        with self._trade_lock:
            if any(o["client_order_id"] == client_id for o in self.orders.values()):
                return FakeResponse(
                    422, {"code": 40010001, "message": "client_order_id must be unique"}
                )
            now = self._now()
            order = {
                "id": str(uuid.uuid4()),
                "client_order_id": client_id,
                "created_at": now,
                "updated_at": now,
                "submitted_at": now,
                "filled_at": None,
                "canceled_at": None,
                "asset_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, body["symbol"])),
                "symbol": body["symbol"],
                "asset_class": "us_equity",
                "qty": str(body["qty"]),
                "filled_qty": "0",
                "filled_avg_price": None,
                "order_class": "simple",
                "order_type": body["type"],
                "type": body["type"],
                "side": body["side"],
                "time_in_force": body["time_in_force"],
                "limit_price": body.get("limit_price"),
                "stop_price": None,
                "status": "accepted",
                "extended_hours": bool(body.get("extended_hours", False)),
            }
            self.orders[order["id"]] = order
            return FakeResponse(200, dict(order))

    def _list_orders(self, request: FakeRequest) -> FakeResponse:
        status = request.query.get("status", "open")
        live = ("new", "accepted", "partially_filled")
        after = _instant(request.query["after"]) if request.query.get("after") else None
        with self._trade_lock:
            rows = [
                dict(o)
                for o in self.orders.values()
                if (status == "all" or (o["status"] in live) == (status == "open"))
                and (after is None or _instant(o["submitted_at"]) > after)
            ]
        rows.sort(key=lambda o: o["submitted_at"], reverse=request.query.get("direction") != "asc")
        return FakeResponse(200, rows[: int(request.query.get("limit", 50))])

    def _order_by_client_id(self, request: FakeRequest) -> FakeResponse:
        wanted = request.query.get("client_order_id")
        with self._trade_lock:
            for order in self.orders.values():
                if order["client_order_id"] == wanted:
                    return FakeResponse(200, dict(order))
        return FakeResponse(404, {"code": 40410000, "message": "order not found"})

    def _get_order(self, request: FakeRequest) -> FakeResponse:
        with self._trade_lock:
            order = self.orders.get(request.path_params["order_id"])
            if order is None:
                return FakeResponse(404, {"code": 40410000, "message": "order not found"})
            return FakeResponse(200, dict(order))

    def _cancel(self, order: dict[str, Any]) -> bool:
        if order["status"] not in ("new", "accepted", "partially_filled"):
            return False
        order["status"] = "canceled"
        order["canceled_at"] = order["updated_at"] = self._now()
        return True

    def _cancel_order(self, request: FakeRequest) -> FakeResponse:
        with self._trade_lock:
            order = self.orders.get(request.path_params["order_id"])
            if order is None:
                return FakeResponse(404, {"code": 40410000, "message": "order not found"})
            if not self._cancel(order):
                return FakeResponse(
                    422, {"code": 42210000, "message": f"order is {order['status']}"}
                )
        return FakeResponse(204, None)

    def _cancel_orders(self, request: FakeRequest) -> FakeResponse:
        out = []
        with self._trade_lock:
            for order in self.orders.values():
                if self._cancel(order):
                    out.append({"id": order["id"], "status": 200, "body": dict(order)})
        return FakeResponse(207, out)

    def _list_positions(self, request: FakeRequest) -> FakeResponse:
        rows = []
        with self._trade_lock:
            for symbol, pos in sorted(self.positions.items()):
                qty, price, avg = pos["qty"], pos["current_price"], pos["avg_entry_price"]
                rows.append(
                    {
                        "asset_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, symbol)),
                        "symbol": symbol,
                        "exchange": "NASDAQ",
                        "asset_class": "us_equity",
                        "avg_entry_price": str(avg),
                        "qty": str(qty),
                        "side": "long" if qty > 0 else "short",
                        "market_value": str(qty * price),
                        "cost_basis": str(qty * avg),
                        "current_price": str(price),
                        "qty_available": str(qty),
                    }
                )
        return FakeResponse(200, rows)

    def _account(self, request: FakeRequest) -> FakeResponse:
        with self._trade_lock:
            value = sum(p["qty"] * p["current_price"] for p in self.positions.values())
            cash = self.cash
        equity = cash + value
        return FakeResponse(
            200,
            {
                "id": "00000000-0000-0000-0000-000000000001",
                "account_number": "PA0000000",
                "status": "ACTIVE",
                "currency": "USD",
                "cash": str(cash),
                "equity": str(equity),
                "portfolio_value": str(equity),
                "buying_power": str(max(cash, 0.0)),
                "long_market_value": str(value),
            },
        )

    def _fill_activities(self, request: FakeRequest) -> FakeResponse:
        after = _instant(request.query["after"]) if request.query.get("after") else None
        size = int(request.query.get("page_size", 100))
        token = request.query.get("page_token")
        with self._trade_lock:
            rows = [
                dict(a)
                for a in self.activities
                if after is None or _instant(a["transaction_time"]) > after
            ]
        if token:
            ids = [a["id"] for a in rows]
            rows = rows[ids.index(token) + 1 :] if token in ids else []
        return FakeResponse(200, rows[:size])
