"""Run the sidecar: build the service from settings, resolve the token, start uvicorn."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from quant.exceptions import ConfigurationError
from quant.sidecar._service import RiskService
from quant.sidecar._store import StateStore
from quant.sidecar._token import ensure_demo_token

if TYPE_CHECKING:
    from quant.config import Settings
    from quant.execution import Broker

__all__ = ["broker_factory", "build_service", "serve"]

_STD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    """Structured (JSON lines) logs of the sidecar on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("quant.sidecar")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def broker_factory(settings: Settings) -> Callable[[], Broker]:
    """A factory of the configured broker adapter (opened lazily by the service).

    Raises
    ------
    ConfigurationError
        No adapter exists for ``QUANT_BROKER``.
    """
    if settings.broker == "sim":

        def open_sim() -> Broker:
            from quant.execution import SimBroker

            return SimBroker.open(settings)

        return open_sim
    import quant.execution as execution

    opener = getattr(execution, "open_broker", None)
    if opener is None:
        raise ConfigurationError(
            f"QUANT_BROKER={settings.broker!r}: no adapter for this broker in quant.execution"
        )
    return lambda: opener(settings)


def build_service(
    settings: Settings,
    *,
    broker: Callable[[], Broker] | None = None,
    with_calendar: bool = True,
) -> RiskService:
    """A started :class:`RiskService` on the configured database and broker.

    Pending migrations are applied first. When the state cannot be read
    (database down) it starts HALTED and says why.
    """
    from quant.db import connect, migrate
    from quant.exceptions import DatabaseError

    try:
        migrate(settings)
    except DatabaseError as exc:
        logging.getLogger("quant.sidecar").error(
            "migrations not applied at start", extra={"error": str(exc)}
        )

    market_open = session_of = None
    if with_calendar:
        from quant.sidecar._clock import MarketClock

        clock = MarketClock(settings.exchange)
        market_open, session_of = clock.is_open, clock.session_of
    service = RiskService(
        settings.risk,
        store=StateStore(lambda: connect(settings), provider=settings.provider),
        broker_factory=broker if broker is not None else broker_factory(settings),
        market_open=market_open,
        session_of=session_of,
    )
    service.start()
    return service


def serve(
    settings: Settings,
    *,
    demo: bool = False,
    feed: Callable[[RiskService], Awaitable[None]] | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    """Run the sidecar in the foreground until interrupted.

    Raises
    ------
    ConfigurationError
        No token outside the demo, or no adapter for the configured broker.
    """
    import uvicorn

    from quant.sidecar._app import create_app

    token = settings.sidecar_token.get_secret_value() if settings.sidecar_token else None
    if token is None:
        if not demo:
            raise ConfigurationError(
                "QUANT_SIDECAR_TOKEN is not set: the sidecar needs a bearer token for kill and "
                "resume (or run the local demo with --demo, which generates one)"
            )
        token, path = ensure_demo_token(settings)
        echo(f"demo sidecar token written to {path}")
    configure_logging()
    service = build_service(settings)
    app = create_app(
        service,
        token=token,
        max_body_bytes=settings.sidecar_max_body_bytes,
        max_orders=settings.sidecar_max_orders,
        feed=feed,
    )
    echo(
        f"risk sidecar on http://{settings.sidecar_bind_host}:{settings.sidecar_port} "
        f"(trading state {service.state})"
        + (f"; FAIL CLOSED: {service.fail_closed_reason}" if service.fail_closed_reason else "")
    )
    config = uvicorn.Config(
        app,
        host=settings.sidecar_bind_host,
        port=settings.sidecar_port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="on",
    )
    uvicorn.Server(config).run()
