"""A local fake of Alpaca's HTTP APIs, for tests through the real alpaca-py client.

It serves, on ``127.0.0.1`` and a free port, the market-data endpoints the
``alpaca`` provider uses:

* ``GET /v2/stocks/bars`` (daily bars, ``symbols``, ``start``, ``end``,
  ``limit``, ``page_token``; answers ``{"bars": {SYM: [...]},
  "next_page_token": ...}`` with pages of ``page_size`` bars);
* ``GET /v1/corporate-actions`` (``forward_splits``, ``reverse_splits``,
  ``cash_dividends``, paginated the same way).

and can inject failures (:meth:`FakeAlpaca.fail_next`: a 429 with
``Retry-After``, a 5xx, ...). Every request is recorded in
:attr:`FakeAlpaca.requests`.

Extending it (e.g. with the trading API: orders, positions, account,
cancel): register a handler for a method and path, keeping state in
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
a POST/PATCH is :attr:`FakeRequest.json`.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

__all__ = ["FakeAlpaca", "FakeRequest", "FakeResponse", "Failure"]

_NEW_YORK = ZoneInfo("America/New_York")


@dataclass(frozen=True)
class FakeRequest:
    """One request as the fake saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any = None
    path_params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FakeResponse:
    """What a route answers: status, JSON body (``None`` = empty) and extra headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Failure:
    """An injected failure, answered instead of the route's response."""

    status: int
    path_prefix: str = ""
    retry_after_s: float | None = None
    message: str = "injected failure"


Handler = Callable[[FakeRequest], FakeResponse]


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


class FakeAlpaca:
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

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        secret_key: str = "test-secret",
        bars: Iterable[dict[str, Any]] = (),
        actions: Iterable[dict[str, Any]] = (),
        page_size: int = 1000,
    ) -> None:
        self.api_key = api_key
        self.secret_key = secret_key
        self.bars: list[dict[str, Any]] = list(bars)
        self.actions: list[dict[str, Any]] = list(actions)
        self.page_size = page_size
        self.requests: list[FakeRequest] = []
        self.state: dict[str, Any] = {}
        self._failures: deque[Failure] = deque()
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.route("GET", "/v2/stocks/bars")(self._stock_bars)
        self.route("GET", "/v1/corporate-actions")(self._corporate_actions)

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """Base URL to give alpaca-py's ``url_override``."""
        if self._server is None:
            raise RuntimeError("FakeAlpaca is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeAlpaca:
        handler = _make_handler(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-alpaca", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeAlpaca:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ extension

    def route(self, method: str, template: str) -> Callable[[Handler], Handler]:
        """Register a handler for ``method`` and a path template (``{name}`` segments)."""
        pattern = re.compile(
            "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
        )

        def register(handler: Handler) -> Handler:
            with self._lock:
                self._routes.insert(0, (method.upper(), pattern, handler))
            return handler

        return register

    def fail_next(
        self,
        status: int,
        count: int = 1,
        *,
        path_prefix: str = "",
        retry_after_s: float | None = None,
    ) -> None:
        """Answer the next ``count`` requests under ``path_prefix`` with ``status``."""
        with self._lock:
            for _ in range(count):
                self._failures.append(Failure(status, path_prefix, retry_after_s))

    def requests_to(self, path: str) -> list[FakeRequest]:
        """The recorded requests for ``path``."""
        return [r for r in self.requests if r.path == path]

    # ------------------------------------------------------------------ dispatch

    def handle(self, request: FakeRequest) -> FakeResponse:
        with self._lock:
            self.requests.append(request)
            failure = next(
                (f for f in self._failures if request.path.startswith(f.path_prefix)), None
            )
            if failure is not None:
                self._failures.remove(failure)
        if request.headers.get("apca-api-key-id") != self.api_key or (
            request.headers.get("apca-api-secret-key") != self.secret_key
        ):
            return FakeResponse(401, {"code": 40110000, "message": "request is not authorized"})
        if failure is not None:
            headers = {}
            if failure.retry_after_s is not None:
                headers["Retry-After"] = str(failure.retry_after_s)
            return FakeResponse(
                failure.status, {"code": failure.status, "message": failure.message}, headers
            )
        for method, pattern, handler in list(self._routes):
            match = pattern.match(request.path)
            if method == request.method and match:
                req = FakeRequest(
                    request.method,
                    request.path,
                    request.query,
                    request.headers,
                    request.json,
                    match.groupdict(),
                )
                return handler(req)
        return FakeResponse(404, {"code": 40410000, "message": f"no route {request.path}"})

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


def _make_handler(fake: FakeAlpaca) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
            return

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            request = FakeRequest(
                self.command,
                parts.path,
                query,
                {k.lower(): v for k, v in self.headers.items()},
                body,
            )
            try:
                response = fake.handle(request)
            except Exception as exc:  # a broken handler is a 500, visible in the test
                response = FakeResponse(500, {"code": 50000000, "message": repr(exc)})
            payload = b"" if response.body is None else json.dumps(response.body).encode()
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.end_headers()
            if payload:
                self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    return _Handler
