"""The risk sidecar: HTTP API, intraday monitor, kill switch and its persistence.

Run it with ``quant sidecar``; talk to it with :class:`SidecarClient`.

The client (:mod:`quant.sidecar.client`) is imported here at once; the
server's names (``create_app``, ``build_service``, ``serve``, ``RiskService``,
``PersistenceError``, ``StateStore``) on first use. So
``from quant.sidecar import SidecarClient`` loads no server code (no FastAPI,
no uvicorn, no broker adapter); code below the server imports
:mod:`quant.sidecar.client` directly (``make lint`` checks it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quant.sidecar._token import ensure_demo_token
from quant.sidecar.client import (
    CheckOrder,
    CheckResponse,
    OrderVerdict,
    SidecarClient,
    resolve_token,
)

if TYPE_CHECKING:
    from quant.sidecar._app import create_app
    from quant.sidecar._server import build_service, serve
    from quant.sidecar._service import PersistenceError, RiskService
    from quant.sidecar._store import StateStore

__all__ = [
    "CheckOrder",
    "CheckResponse",
    "OrderVerdict",
    "PersistenceError",
    "RiskService",
    "SidecarClient",
    "StateStore",
    "build_service",
    "create_app",
    "ensure_demo_token",
    "resolve_token",
    "serve",
]

_SERVER_NAMES = {
    "create_app": "_app",
    "build_service": "_server",
    "serve": "_server",
    "PersistenceError": "_service",
    "RiskService": "_service",
    "StateStore": "_store",
}


def __getattr__(name: str) -> Any:
    """A server name, imported on first use."""
    module = _SERVER_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from quant.sidecar import _app, _server, _service, _store

    modules = {"_app": _app, "_server": _server, "_service": _service, "_store": _store}
    value = getattr(modules[module], name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
