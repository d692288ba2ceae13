"""What the IB provider and broker adapter share: the client library, its event loop, ports.

Both talk to an IB Gateway or TWS through ``ib_async`` when installed, else
``ib_insync`` (the same API, :func:`ib_module`), whose synchronous calls run on
the calling thread's event loop (:func:`ensure_event_loop`). Ports: Gateway
paper 4002, live 4001; TWS paper 7497, live 7496.
"""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

__all__ = ["LIVE_PORTS", "PAPER_PORTS", "connect", "ensure_event_loop", "ib_module"]

PAPER_PORTS: frozenset[int] = frozenset({4002, 7497})
"""API ports of paper trading (IB Gateway, TWS)."""
LIVE_PORTS: frozenset[int] = frozenset({4001, 7496})
"""API ports of live trading (IB Gateway, TWS)."""


def ib_module() -> ModuleType:
    """``ib_async`` if installed, else ``ib_insync``."""
    try:
        import ib_async

        return ib_async
    except ImportError:
        import ib_insync

        return ib_insync


def ensure_event_loop() -> None:
    """Give the thread a usable event loop: the sync API of ib_insync / ib_async runs on it.

    A worker thread has none, and an earlier ``asyncio.run`` leaves the main
    thread without one (or with a closed one).
    """
    try:
        loop = asyncio.get_event_loop()
    except RuntimeError:
        loop = None
    if loop is None or loop.is_closed():
        asyncio.set_event_loop(asyncio.new_event_loop())


def connect(
    mod: ModuleType,
    host: str,
    port: int,
    *,
    client_id: int,
    timeout_s: float,
    request_timeout_s: float = 0.0,
    **options: Any,
) -> Any:
    """A client of ``mod`` (:func:`ib_module`) connected to the API at ``host:port``.

    Request errors raise (``RaiseRequestErrors``); ``request_timeout_s`` bounds every
    request (0: no bound, the library's default); ``options`` go to ``IB.connect``
    (``readonly``, ``account``).

    Raises
    ------
    OSError, TimeoutError, ConnectionError
        The connection failed; the half-open client is disconnected first.
    """
    ib = mod.IB()
    ib.RaiseRequestErrors = True
    ib.RequestTimeout = request_timeout_s
    try:
        ib.connect(host, port, clientId=client_id, timeout=timeout_s, **options)
    except BaseException:
        ib.disconnect()
        raise
    return ib
