"""The backtest's baselines in a process of their own, beside the strategy's.

The equal-weight and ``top_k`` books are independent of the strategy's
(accounts, run ids and weights of their own) and need only D's scores, which
the strategy's process has written to ``ops.predictions`` before it sends D.
So the baselines work through the sessions as they are handed over, on another core.

Protocol (:class:`quant.backtest._process.WorkerProcess`): the child receives
the backtest (id, settings, sessions), then each session ``(D, run_id)``, then
``None``; it answers ``("done", books, stage_seconds)``, each book as its
:meth:`~quant.backtest._session.Book.state` (equity, weights, run ids, portfolio warnings,
positions).
"""

from __future__ import annotations

from datetime import date
from multiprocessing.connection import Connection
from typing import Any

from quant.backtest._process import WorkerProcess
from quant.backtest._session import (
    BASELINES,
    Book,
    Clock,
    backtest_runs,
    baseline_session,
    relation_cache,
)
from quant.config import Settings

__all__ = ["Baselines"]


class Baselines:
    """The baselines' process, seen from the strategy's."""

    def __init__(self, bid: str, settings: Settings, sessions: list[date]) -> None:
        self.worker = WorkerProcess("baselines", "quant.backtest._baselines:work")
        self.process = self.worker.process
        self.worker.send((bid, settings, sessions))

    def send(self, day: date, run_id: str) -> None:
        """Hand D to the baselines; raises when they have failed."""
        self.worker.send((day, run_id))

    def finish(self) -> tuple[dict[str, Any], dict[str, float]]:
        """Wait for the last session: each baseline's (equity, weights, run ids), stage times."""
        self.worker.send(None)
        _, books, seconds = self.worker.receive()
        self.process.wait(timeout=60)
        return books, seconds

    def stop(self) -> None:
        """End the process if it still runs (after a failure of the strategy's)."""
        self.worker.stop()


def work(receive: Connection, send: Connection) -> None:
    """The child: the baselines' books, session after session."""
    from quant.db import connect

    bid, settings, sessions = receive.recv()
    clock = Clock()
    books = {name: Book(name, bid, settings, sessions[-1]) for name in BASELINES}
    conn = connect(settings)
    try:
        cache = relation_cache(conn, sessions, settings, model=False)
        conn.commit()
        with backtest_runs(settings, cache, sessions[0]) as base:
            while (message := receive.recv()) is not None:
                day, run_id = message
                baseline_session(books, base.but(session=day, run_id=run_id), conn, clock)
        states = {name: b.state() for name, b in books.items()}
        send.send(("done", states, clock.seconds))
    finally:
        conn.close()
        for book in books.values():
            book.close()
