"""The Alpaca broker adapter: alpaca-py's ``TradingClient`` (paper by default).

Credentials come from ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY`` (or are
passed in, e.g. resolved from an Airflow connection by the DAG task); the
server from ``APCA_API_BASE_URL`` when set. Secrets are never logged or put
in error messages.

Retries: the SDK's own 429/504 retry is switched off so that the bound is
ours alone. Every request is retried on 429, 5xx, timeouts and connection
errors with exponential backoff (honouring ``Retry-After``), at most
``max_attempts`` times, then :class:`~quant.exceptions.BrokerUnavailableError`.
A submit is never blindly resent: after any failure that may have reached
the server (5xx, timeout, connection reset) the order is looked up by its
client order id first, and a duplicate-id refusal (HTTP 422) is answered by
looking the existing order up, so each client order id yields one order.

Fills come from the account activities (``GET /v2/account/activities/FILL``);
Alpaca charges no per-share commission, so ``commission_usd`` is 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

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
from quant.venues.alpaca._connection import (
    KEY_VARIABLE,
    SECRET_VARIABLE,
    attempt_request,
    bounded,
    credentials,
    trading_url,
)

__all__ = ["AlpacaBroker"]

_STATUS = {
    "new": OrderStatus.OPEN,
    "accepted": OrderStatus.OPEN,
    "pending_new": OrderStatus.OPEN,
    "accepted_for_bidding": OrderStatus.OPEN,
    "held": OrderStatus.OPEN,
    "calculated": OrderStatus.OPEN,
    "pending_cancel": OrderStatus.OPEN,
    "pending_replace": OrderStatus.OPEN,
    "replaced": OrderStatus.CANCELLED,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "done_for_day": OrderStatus.CANCELLED,
    "canceled": OrderStatus.CANCELLED,
    "expired": OrderStatus.CANCELLED,
    "stopped": OrderStatus.OPEN,
    "suspended": OrderStatus.OPEN,
    "rejected": OrderStatus.REJECTED,
}


def _float(value: Any, default: float = 0.0) -> float:
    return default if value in (None, "") else float(value)


def _time(value: Any) -> datetime:
    if not value:
        return datetime.now(UTC)
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _order_from_json(raw: dict[str, Any]) -> BrokerOrder:
    order_type = (
        OrderType.LIMIT if raw.get("type", raw.get("order_type")) == "limit" else OrderType.MARKET
    )
    tif = str(raw.get("time_in_force") or "day")
    return BrokerOrder(
        order_id=str(raw["id"]),
        client_order_id=str(raw["client_order_id"]),
        symbol=str(raw.get("symbol") or ""),
        side=raw.get("side") or "buy",
        qty_shares=_float(raw.get("qty")),
        filled_qty_shares=_float(raw.get("filled_qty")),
        status=_STATUS.get(str(raw.get("status")), OrderStatus.OPEN),
        order_type=order_type,
        time_in_force=TimeInForce(tif) if tif in ("day", "opg", "cls") else TimeInForce.DAY,
        limit_price_usd=None if raw.get("limit_price") in (None, "") else float(raw["limit_price"]),
        reduce_only=False,
        strategy=None,
        submitted_at=_time(raw.get("submitted_at") or raw.get("created_at")),
        updated_at=_time(raw.get("updated_at") or raw.get("created_at")),
        status_reason=str(raw.get("status")),
    )


class AlpacaBroker:
    """An Alpaca trading account through alpaca-py; implements :class:`~quant.execution.Broker`.

    Parameters
    ----------
    api_key, secret_key : str, optional
        Default to ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY``.
    paper : bool, default True
        Paper account (``paper-api.alpaca.markets``) or live.
    base_url : str, optional
        Server; defaults to ``APCA_API_BASE_URL`` when set, else Alpaca's own.
        In paper mode a live server URL is refused.
    max_attempts : int
        Attempts per request before giving up.
    backoff_s, max_backoff_s : float
        First wait between attempts (doubled each time) and the longest.
    timeout_s : float
        Timeout of one HTTP request, seconds.
    sleep : callable
        How to wait (tests pass a recorder).
    """

    name = "alpaca"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        secret_key: str | None = None,
        paper: bool = True,
        base_url: str | None = None,
        max_attempts: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        timeout_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from alpaca.trading.client import TradingClient

        api_key, secret_key = credentials(api_key, secret_key)
        if not api_key or not secret_key:
            raise ConfigurationError(
                f"alpaca broker: credentials missing: set {KEY_VARIABLE} and {SECRET_VARIABLE} "
                "(or an Airflow connection the DAG resolves)"
            )
        base_url = trading_url(base_url, paper=paper)
        self.retry = Backoff(
            max_attempts=max_attempts, backoff_s=backoff_s, max_backoff_s=max_backoff_s, sleep=sleep
        )
        self.paper = paper
        self.base_url = base_url
        self.timeout_s = timeout_s
        self._client = TradingClient(
            api_key, secret_key, paper=paper, raw_data=True, url_override=base_url
        )
        bounded(self._client, timeout_s)  # a timeout on every request; the SDK's retry off
        self._client_ids: dict[str, str] = {}

    def __repr__(self) -> str:  # never the credentials
        return f"AlpacaBroker(paper={self.paper}, base_url={self.base_url!r})"

    # ------------------------------------------------------------------ transport
    def _once(self, method: str, path: str, data: Any = None) -> Any:
        return attempt_request(lambda: self._client._request(method, path, data))

    def _call(self, method: str, path: str, data: Any = None) -> Any:
        """One request with bounded retries on 429/5xx/timeouts (for idempotent requests)."""
        return self.retry.run(
            lambda: self._once(method, path, data),
            lambda last: BrokerUnavailableError(
                f"alpaca: {method} {path} failed {self.retry.max_attempts} times (last: {last}); "
                "giving up"
            ),
        )

    @staticmethod
    def _api_error(exc: Exception) -> tuple[int | None, str]:
        status = getattr(exc, "status_code", None)
        try:
            message = exc.message  # type: ignore[attr-defined]
        except (ValueError, KeyError, TypeError):  # body not Alpaca's JSON: use the text
            message = str(exc)[:200]
        return status, str(message)

    # ------------------------------------------------------------------ reads
    def account(self) -> Account:
        raw = self._call("GET", "/account")
        equity = _float(raw.get("equity"), _float(raw.get("portfolio_value")))
        return Account(equity_usd=equity, cash_usd=_float(raw.get("cash")))

    def positions(self) -> list[Position]:
        rows = self._call("GET", "/positions") or []
        out = []
        for raw in rows:
            qty = _float(raw.get("qty"))
            if raw.get("side") == "short" and qty > 0:
                qty = -qty
            if qty == 0:
                continue
            out.append(
                Position(
                    symbol=str(raw["symbol"]),
                    qty_shares=qty,
                    avg_price_usd=_float(raw.get("avg_entry_price")),
                    market_price_usd=_float(raw.get("current_price")),
                )
            )
        return sorted(out, key=lambda p: p.symbol)

    def open_orders(self) -> list[BrokerOrder]:
        rows = self._call("GET", "/orders", {"status": "open", "limit": 500, "direction": "asc"})
        return [_order_from_json(r) for r in rows or []]

    def order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        from alpaca.common.exceptions import APIError

        try:
            raw = self._call(
                "GET", "/orders:by_client_order_id", {"client_order_id": client_order_id}
            )
        except APIError as exc:
            status, message = self._api_error(exc)
            if status == 404:
                return None
            raise BrokerError(
                f"alpaca: order lookup {client_order_id!r}: HTTP {status}: {message}"
            ) from None
        order = _order_from_json(raw)
        self._client_ids[order.order_id] = order.client_order_id
        return order

    def fills_since(self, since: datetime) -> list[Fill]:
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware (UTC)")
        from alpaca.common.exceptions import APIError

        fills: list[Fill] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {
                "after": since.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "direction": "asc",
                "page_size": 100,
            }
            if token:
                params["page_token"] = token
            try:
                rows = self._call("GET", "/account/activities/FILL", params) or []
            except APIError as exc:
                status, message = self._api_error(exc)
                raise BrokerError(f"alpaca: fills: HTTP {status}: {message}") from None
            for raw in rows:
                order_id = str(raw["order_id"])
                fills.append(
                    Fill(
                        fill_id=str(raw["id"]),
                        order_id=order_id,
                        client_order_id=self._client_id_of(order_id),
                        symbol=str(raw["symbol"]),
                        side="buy" if raw.get("side") == "buy" else "sell",
                        qty_shares=_float(raw.get("qty")),
                        price_usd=_float(raw.get("price")),
                        commission_usd=0.0,
                        filled_at=_time(raw.get("transaction_time")),
                    )
                )
            if len(rows) < 100:
                break
            token = str(rows[-1]["id"])
        return [f for f in fills if f.filled_at >= since]

    def _client_id_of(self, order_id: str) -> str:
        if order_id not in self._client_ids:
            raw = self._call("GET", f"/orders/{order_id}")
            self._client_ids[order_id] = str(raw["client_order_id"])
        return self._client_ids[order_id]

    # ------------------------------------------------------------------ writes
    def submit(self, order: Order) -> BrokerOrder:
        """Place ``order``; at most one order per client id reaches the account.

        Raises
        ------
        BrokerError
            Refused (4xx other than a duplicate id; a duplicate raises too,
            with the existing order looked up first to say so).
        BrokerUnavailableError
            Still failing after ``max_attempts``.
        """
        from alpaca.common.exceptions import APIError

        body: dict[str, Any] = {
            "symbol": order.symbol.upper(),
            "qty": str(int(order.qty_shares)),
            "side": order.side,
            "type": str(order.order_type),
            "time_in_force": str(order.time_in_force),
            "client_order_id": order.client_order_id,
        }
        if order.limit_price_usd is not None:
            body["limit_price"] = str(order.limit_price_usd)

        def attempt() -> BrokerOrder:
            try:
                placed = _order_from_json(self._once("POST", "/orders", body))
            except Retryable as exc:
                if exc.may_have_reached:
                    existing = self.order_by_client_id(order.client_order_id)
                    if existing is not None:
                        return existing  # the failed attempt did create it
                raise
            self._client_ids[placed.order_id] = placed.client_order_id
            return placed

        try:
            return self.retry.run(
                attempt,
                lambda last: BrokerUnavailableError(
                    f"alpaca: POST /orders for {order.client_order_id!r} failed "
                    f"{self.retry.max_attempts} times (last: {last}); giving up"
                ),
            )
        except APIError as exc:
            status, message = self._api_error(exc)
            if status == 422 and "client_order_id" in message:
                existing = self.order_by_client_id(order.client_order_id)
                raise BrokerError(
                    f"alpaca: duplicate client_order_id {order.client_order_id!r}"
                    + (f" (order {existing.order_id})" if existing else "")
                ) from None
            raise BrokerError(
                f"alpaca: order {order.client_order_id!r} refused: HTTP {status}: {message}"
            ) from None

    def cancel(self, order_id: str) -> bool:
        from alpaca.common.exceptions import APIError

        try:
            self._call("DELETE", f"/orders/{order_id}")
        except APIError as exc:
            status, message = self._api_error(exc)
            if status == 422:  # not cancelable: already filled / cancelled
                return False
            raise BrokerError(f"alpaca: cancel {order_id}: HTTP {status}: {message}") from None
        return True

    def cancel_all(self) -> int:
        rows = self._call("DELETE", "/orders") or []
        return sum(1 for r in rows if int(r.get("status", 200)) < 300)

    def close(self) -> None:
        self._client._session.close()
