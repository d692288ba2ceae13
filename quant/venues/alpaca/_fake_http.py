"""The HTTP side of the Alpaca fake: routes, injected failures, recorded requests.

A threaded HTTP server on ``127.0.0.1`` and a free port answers each request
with the handler registered for its method and path template (``{name}``
segments match into :attr:`FakeRequest.path_params`), records every request,
and can answer instead, or after the request took effect, with an injected
failure (:meth:`RoutedHTTPFake.fail_next`, :meth:`RoutedHTTPFake.delay_next`).
Bodies are JSON both ways.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from quant.venues._fake_server import ThreadedFakeServer

__all__ = ["Failure", "FakeRequest", "FakeResponse", "Handler", "RoutedHTTPFake"]


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
    method: str | None = None
    after_handling: bool = False
    """True: the request takes effect first, then the failure is answered."""
    delay_s: float = 0.0
    """Seconds to wait before answering (longer than the client's timeout = a timeout)."""


Handler = Callable[[FakeRequest], FakeResponse]


class RoutedHTTPFake(ThreadedFakeServer):
    """A threaded local HTTP server answering registered routes.

    Subclasses register their routes in ``__init__`` and may refuse a request
    before any route sees it (:meth:`_refuse`, e.g. an authentication check).
    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    thread_name = "fake-http"
    """Name of the thread that serves the fake."""

    def __init__(self) -> None:
        self.requests: list[FakeRequest] = []
        self.state: dict[str, Any] = {}
        self._failures: deque[Failure] = deque()
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """Base URL of the server (what a client's ``url_override`` takes)."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        self._serve_in_thread(
            ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self)), self.thread_name
        )
        return self

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
        method: str | None = None,
        after_handling: bool = False,
        delay_s: float = 0.0,
    ) -> None:
        """Answer the next ``count`` requests under ``path_prefix`` (and of ``method``,
        when given) with ``status``; with ``after_handling`` the request takes effect
        first (e.g. the order is created, then a 500 is answered)."""
        with self._lock:
            for _ in range(count):
                self._failures.append(
                    Failure(
                        status,
                        path_prefix,
                        retry_after_s,
                        method=method,
                        after_handling=after_handling,
                        delay_s=delay_s,
                    )
                )

    def delay_next(
        self, delay_s: float, count: int = 1, *, path_prefix: str = "", method: str | None = None
    ) -> None:
        """The next ``count`` requests take effect but are answered after ``delay_s``
        (longer than the client's timeout: the client sees a timeout)."""
        self.fail_next(
            0, count, path_prefix=path_prefix, method=method, after_handling=True, delay_s=delay_s
        )

    def requests_to(self, path: str) -> list[FakeRequest]:
        """The recorded requests for ``path``."""
        return [r for r in self.requests if r.path == path]

    # ------------------------------------------------------------------ dispatch

    def _refuse(self, request: FakeRequest) -> FakeResponse | None:
        """The answer to a request refused before any route or injected failure, or
        ``None`` to let it through."""
        return None

    def handle(self, request: FakeRequest) -> FakeResponse:
        with self._lock:
            self.requests.append(request)
            failure = next(
                (
                    f
                    for f in self._failures
                    if request.path.startswith(f.path_prefix)
                    and (f.method is None or f.method.upper() == request.method)
                ),
                None,
            )
            if failure is not None:
                self._failures.remove(failure)
        refused = self._refuse(request)
        if refused is not None:
            return refused
        if failure is not None and not failure.after_handling:
            return self._failure_response(failure)
        response = self._dispatch(request)
        if failure is not None:
            if failure.delay_s:
                time.sleep(failure.delay_s)
            if failure.status:
                return self._failure_response(failure)
        return response

    @staticmethod
    def _failure_response(failure: Failure) -> FakeResponse:
        if failure.delay_s and not failure.after_handling:
            time.sleep(failure.delay_s)
        headers = {}
        if failure.retry_after_s is not None:
            headers["Retry-After"] = str(failure.retry_after_s)
        return FakeResponse(
            failure.status, {"code": failure.status, "message": failure.message}, headers
        )

    def _dispatch(self, request: FakeRequest) -> FakeResponse:
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


def _make_handler(fake: RoutedHTTPFake) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
            return

        def handle(self) -> None:
            try:
                super().handle()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout under test): nothing to answer

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
