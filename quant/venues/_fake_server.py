"""The life cycle the venues' fake servers share: a socket server on a daemon thread.

A fake binds 127.0.0.1 when started, serves each connection on a thread of
its own, and stops (shutting the server down and closing its socket) when
stopped or when its ``with`` block ends.
"""

from __future__ import annotations

import socketserver
import threading
from abc import ABC, abstractmethod
from typing import Self

__all__ = ["ThreadedFakeServer"]


class ThreadedFakeServer(ABC):
    """Base of a fake server: subclasses build their server in :meth:`start`, then
    hand it to :meth:`_serve_in_thread`."""

    _server: socketserver.TCPServer | None = None
    _thread: threading.Thread | None = None

    @abstractmethod
    def start(self) -> Self:
        """Bind the server and serve it (:meth:`_serve_in_thread`); returns self."""

    def _serve_in_thread(self, server: socketserver.TCPServer, name: str) -> None:
        """Serve ``server`` (each connection on a daemon thread) from a daemon thread."""
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
