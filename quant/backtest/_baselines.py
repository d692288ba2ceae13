"""The backtest's baselines in a process of their own, beside the strategy's.

The equal-weight and ``top_k`` books are independent of the strategy's
(accounts, run ids and weights of their own) and need only D's scores, which
the strategy's process has written to ``ops.predictions`` before it sends D.
So the baselines run a session behind at most, on the machine's other core.

The process runs :func:`main` (``python -c``) with two pipes
(:class:`multiprocessing.connection.Connection`): it receives the backtest
(id, settings, sessions), then each session ``(D, run_id)``, then ``None``;
it answers ``("done", books, stage_seconds)`` or ``("error", message)``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from datetime import date
from multiprocessing.connection import Connection
from typing import Any

from quant.config import Settings
from quant.exceptions import BacktestError

__all__ = ["Baselines"]

_WAIT_S = 1.0
_ENTRY = "import sys; from quant.backtest._baselines import main; sys.exit(main(sys.argv))"


class Baselines:
    """The baselines' process, seen from the strategy's."""

    def __init__(self, bid: str, settings: Settings, sessions: list[date]) -> None:
        to_child, from_parent = os.pipe()
        to_parent, from_child = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, "-c", _ENTRY, str(to_child), str(from_child)],
            pass_fds=(to_child, from_child),
        )
        os.close(to_child)
        os.close(from_child)
        self._send = Connection(from_parent, readable=False)
        self._receive = Connection(to_parent, writable=False)
        self._send.send((bid, settings, sessions))

    def _ended(self) -> BacktestError:
        return BacktestError(f"baselines: the process ended (exit code {self.process.returncode})")

    def send(self, day: date, run_id: str) -> None:
        """Hand D to the baselines; raises when they have failed."""
        if self._receive.poll():
            message = self._receive.recv()
            raise BacktestError(f"baselines: {message[1]}")
        if self.process.poll() is not None:
            raise self._ended()
        self._send.send((day, run_id))

    def finish(self) -> tuple[dict[str, Any], dict[str, float]]:
        """Wait for the last session: each baseline's (equity, weights, run ids), stage times."""
        self._send.send(None)
        while not self._receive.poll(_WAIT_S):
            if self.process.poll() is not None and not self._receive.poll():
                raise self._ended()
        message = self._receive.recv()
        if message[0] == "error":
            raise BacktestError(f"baselines: {message[1]}")
        self.process.wait(timeout=60)
        return message[1], message[2]

    def stop(self) -> None:
        """End the process if it still runs (after a failure of the strategy's)."""
        for end in (self._send, self._receive):
            end.close()  # a process waiting for a session reads the end of its input and exits
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _work(receive: Connection, send: Connection) -> None:
    from quant.backtest._engine import (
        BASELINES,
        _baseline_session,
        _Book,
        _Clock,
        _relation_cache,
        _session_context,
    )
    from quant.db import connect

    bid, settings, sessions = receive.recv()
    clock = _Clock()
    books = {name: _Book(name, bid, settings, sessions[-1]) for name in BASELINES}
    conn = connect(settings)
    try:
        cache = _relation_cache(conn, sessions, settings, model=False)
        conn.commit()
        with _session_context(cache):
            while (message := receive.recv()) is not None:
                day, run_id = message
                _baseline_session(books, day, run_id, conn, settings, clock)
        states = {name: (b.equity, b.weights, b.run_ids) for name, b in books.items()}
        send.send(("done", states, clock.seconds))
    finally:
        conn.close()
        for book in books.values():
            book.close()


def main(argv: list[str]) -> int:
    receive = Connection(int(argv[1]), writable=False)
    send = Connection(int(argv[2]), readable=False)
    try:
        _work(receive, send)
    except EOFError:
        return 1  # the strategy's process went away
    except BaseException as exc:  # whatever it is, the strategy's process must hear of it
        with contextlib.suppress(OSError):  # unless it has gone away
            send.send(("error", f"{type(exc).__name__}: {exc}"))
        return 1
    return 0

