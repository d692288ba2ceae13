"""The risk sidecar: HTTP API, intraday monitor, kill switch and its persistence.

Run it with ``quant sidecar``; talk to it with :class:`SidecarClient`.
"""

from quant.sidecar._app import create_app
from quant.sidecar._client import CheckOrder, CheckResponse, OrderVerdict, SidecarClient
from quant.sidecar._server import build_service, ensure_demo_token, resolve_token, serve
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
