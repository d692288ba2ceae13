"""The sidecar's HTTP API (contract v1) on Starlette, with msgspec on the hot path.

See ``quant/sidecar/README_SECTION.md`` for the endpoints. JSON bodies are
decoded into typed msgspec structs (unknown fields refused); a malformed
body gets 400, an oversized one 413, a missing or wrong token 401, each with
``{"error": "..."}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, Literal

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from quant.risk import KillMode, Override, RiskOrder
from quant.sidecar._metrics import CONTENT_TYPE_LATEST
from quant.sidecar._service import PersistenceError, RiskService

__all__ = ["create_app"]

log = logging.getLogger("quant.sidecar")

_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
_Symbol = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
_Text = Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]


class OrderIn(msgspec.Struct, forbid_unknown_fields=True):
    client_order_id: _Id
    symbol: _Symbol
    side: Literal["buy", "sell"]
    qty: float
    price: float
    strategy: Annotated[str, msgspec.Meta(max_length=128)] | None = None


class CheckIn(msgspec.Struct, forbid_unknown_fields=True):
    orders: list[OrderIn]


class KillIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: _Text
    mode: Literal["halt", "reduce", "flatten"] = "halt"
    actor: Annotated[str, msgspec.Meta(max_length=64)] = "http"


class ResumeIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: _Text = "resumed by an operator"
    actor: Annotated[str, msgspec.Meta(max_length=64)] = "http"


class MarksIn(msgspec.Struct, forbid_unknown_fields=True):
    prices: dict[_Symbol, Annotated[float, msgspec.Meta(gt=0)]]
    at: float | None = None


class OverrideIn(msgspec.Struct, forbid_unknown_fields=True):
    scope: Literal["symbol", "strategy"]
    key: _Symbol
    reason: _Text
    size_multiplier: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    reduce_only: bool = False
    trading_disabled: bool = False
    clear: bool = False
    actor: Annotated[str, msgspec.Meta(max_length=64)] = "http"


class BookIn(msgspec.Struct, forbid_unknown_fields=True):
    cash_usd: float
    positions: dict[_Symbol, float]
    marks: dict[_Symbol, Annotated[float, msgspec.Meta(gt=0)]] = {}
    universe: dict[_Symbol, str | None] | None = None
    session: Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = None
    clear_in_flight: bool = True


_check_decoder = msgspec.json.Decoder(CheckIn)
_encode = msgspec.json.Encoder().encode
_JSON = "application/json"


def _json(payload: Any, status: int = 200) -> Response:
    return Response(_encode(payload), status_code=status, media_type=_JSON)


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


def create_app(
    service: RiskService,
    *,
    token: str | None,
    max_body_bytes: int = 4_000_000,
    max_orders: int = 10_000,
    tick_interval_s: float = 1.0,
    feed: Callable[[RiskService], Awaitable[None]] | None = None,
) -> Starlette:
    """Build the ASGI app around a started :class:`RiskService`.

    Parameters
    ----------
    service : RiskService
    token : str or None
        Bearer token of the mutating endpoints. ``None`` refuses every one of
        them (checks, health, state and metrics still answer).
    max_body_bytes : int
        Larger bodies get 413.
    max_orders : int
        More orders in one check get 413.
    tick_interval_s : float
        Period of the stale-feed watch.
    feed : async callable, optional
        A mark feed run for the app's lifetime (e.g. the bar replay of the demo).
    """
    token_bytes = token.encode() if token else None

    async def read_body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise HTTPException(400, "invalid Content-Length") from None
            if declared > max_body_bytes:
                raise HTTPException(413, f"body of {declared} bytes exceeds {max_body_bytes}")
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                raise HTTPException(413, f"body exceeds {max_body_bytes} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        if not body:
            raise HTTPException(400, "empty body: a JSON object is required")
        return body

    def authorize(request: Request) -> None:
        header = request.headers.get("authorization")
        if token_bytes is None:
            raise HTTPException(401, "no sidecar token is configured: set QUANT_SIDECAR_TOKEN")
        if not header or not header.startswith("Bearer "):
            raise HTTPException(401, "missing bearer token (Authorization: Bearer <token>)")
        if not hmac.compare_digest(header[7:].strip().encode(), token_bytes):
            raise HTTPException(401, "invalid bearer token")

    def decode(body: bytes, kind: type[Any]) -> Any:
        try:
            return msgspec.json.decode(body, type=kind)
        except msgspec.ValidationError as exc:
            raise HTTPException(400, f"invalid request: {exc}") from None
        except msgspec.DecodeError as exc:
            raise HTTPException(400, f"malformed JSON: {exc}") from None

    # -- hot path ------------------------------------------------------------------------
    metrics = service.metrics

    async def check(request: Request) -> Response:
        started = time.perf_counter()
        body = await read_body(request)
        try:
            req = _check_decoder.decode(body)
        except msgspec.ValidationError as exc:
            return _error(400, f"invalid request: {exc}")
        except msgspec.DecodeError as exc:
            return _error(400, f"malformed JSON: {exc}")
        orders = req.orders
        if len(orders) > max_orders:
            return _error(413, f"{len(orders)} orders exceed the maximum of {max_orders} per check")
        results = service.check(
            [
                RiskOrder(o.client_order_id, o.symbol.upper(), o.side, o.qty, o.price, o.strategy)
                for o in orders
            ]
        )
        out = []
        append = out.append
        for r in results:
            if r.approved and not r.shadow:
                append({"client_order_id": r.client_order_id, "approved": True, "reasons": []})
                continue
            item: dict[str, Any] = {
                "client_order_id": r.client_order_id,
                "approved": r.approved,
                "reasons": [d.code for d in r.denials],
            }
            if r.denials:
                item["denials"] = [
                    {"code": d.code, "rule": d.rule, "context": d.context} for d in r.denials
                ]
            if r.shadow:
                item["shadow"] = [
                    {"code": d.code, "rule": d.rule, "context": d.context} for d in r.shadow
                ]
            append(item)
        payload = _encode({"trading_state": service.machine.state, "results": out})
        metrics.latency.observe(time.perf_counter() - started)
        metrics.batch_size.observe(len(orders))
        return Response(payload, media_type=_JSON)

    # -- the rest --------------------------------------------------------------------------
    async def health(request: Request) -> Response:
        return _json(service.health())

    async def state(request: Request) -> Response:
        return _json(service.state_view())

    async def kill(request: Request) -> Response:
        authorize(request)
        req: KillIn = decode(await read_body(request), KillIn)
        out = service.kill(req.reason, KillMode(req.mode), actor=req.actor)
        return _json(out)

    async def resume(request: Request) -> Response:
        authorize(request)
        body = await request.body()
        req: ResumeIn = decode(body, ResumeIn) if body else ResumeIn()
        try:
            return _json(service.resume(req.reason, actor=req.actor))
        except PersistenceError as exc:
            return _error(503, str(exc))

    async def marks(request: Request) -> Response:
        authorize(request)
        req: MarksIn = decode(await read_body(request), MarksIn)
        prices = {s.upper(): p for s, p in req.prices.items()}
        return _json(service.apply_marks(prices, req.at))

    async def overrides(request: Request) -> Response:
        authorize(request)
        req: OverrideIn = decode(await read_body(request), OverrideIn)
        override = None
        if not req.clear:
            override = Override(
                size_multiplier=req.size_multiplier,
                reduce_only=req.reduce_only,
                trading_disabled=req.trading_disabled,
                reason=req.reason,
            )
        try:
            return _json(service.set_override(req.scope, req.key, override, actor=req.actor))
        except PersistenceError as exc:
            return _error(503, str(exc))

    async def book(request: Request) -> Response:
        authorize(request)
        req: BookIn = decode(await read_body(request), BookIn)
        return _json(
            service.load_book(
                cash_usd=req.cash_usd,
                positions={s.upper(): q for s, q in req.positions.items()},
                marks={s.upper(): p for s, p in req.marks.items()},
                universe=req.universe,
                session=req.session,
                clear_in_flight=req.clear_in_flight,
            )
        )

    async def book_sync(request: Request) -> Response:
        authorize(request)
        from quant.exceptions import BrokerError, DatabaseError

        try:
            return _json(service.sync_from_broker(actor="http"))
        except (BrokerError, DatabaseError) as exc:
            return _error(503, f"book not loaded from the broker: {exc}")

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        response = _error(exc.status_code, str(exc.detail))
        if headers:
            response.headers.update(headers)
        return response

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async def watch() -> None:
            while True:
                await asyncio.sleep(tick_interval_s)
                try:
                    service.tick()
                except Exception:  # the watch must outlive one bad tick; logged loudly
                    log.exception("stale-feed watch failed")

        # Latency: move everything allocated so far (modules, calendar, the book) out of
        # the collector's reach and collect the young generation less often; without
        # this a full collection lands inside a check now and then (p99 x 8 measured).
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 50, 100)
        tasks = [asyncio.create_task(watch())]
        if feed is not None:
            tasks.append(asyncio.create_task(feed(service)))
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/v1/state", state, methods=["GET"]),
        Route("/v1/check", check, methods=["POST"]),
        Route("/v1/kill", kill, methods=["POST"]),
        Route("/v1/resume", resume, methods=["POST"]),
        Route("/v1/marks", marks, methods=["POST"]),
        Route("/v1/overrides", overrides, methods=["POST"]),
        Route("/v1/book", book, methods=["POST"]),
        Route("/v1/book/sync", book_sync, methods=["POST"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
