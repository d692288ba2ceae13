"""The backtest's model fits, ahead of time, in a process of their own.

A backtest knows when its calendar retrains fall (the first session, then
every session :func:`quant.model.schedule_due` names). What such a retrain
fits depends only on the marts up to its session, which are all built before
the loop; so a second process fits those models with
:func:`quant.model.fit_model`, in date order, while the strategy's process
works through the sessions before them. When ``retrain_model`` retrains at D,
it registers the model fitted for D (the run context's ``models``)
instead of fitting it again: the same model, since the fit is deterministic
(``tests/integration/test_backtest_parity.py`` holds the backtest's models'
weights and orders to the DAG's, which fits inline). A retrain the calendar
did not announce (drift) fits inline as before.

Protocol (:class:`quant.backtest._process.WorkerProcess`): the child receives
(settings, sessions, dates), then sends ``("model", D, TrainedModel)`` or
``("none", D, why)`` for each date in order, then ``("done", None, None)``.
"""

from __future__ import annotations

import threading
from datetime import date
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from quant.backtest._process import WorkerProcess
from quant.backtest._session import one_blas_thread
from quant.config import Settings
from quant.exceptions import BacktestError

if TYPE_CHECKING:
    from quant.model import TrainedModel

__all__ = ["Trainer", "retrain_dates"]


def retrain_dates(sessions: list[date], settings: Settings) -> list[date]:
    """The sessions a backtest over ``sessions`` retrains on by the calendar (and the first)."""
    from quant.model import schedule_due

    cfg = settings.model
    return sessions[:1] + [
        d for d in sessions[1:] if schedule_due(d, cfg.retrain_schedule, settings.exchange)
    ]


class Trainer:
    """The fitting process, seen from the strategy's: a :data:`PretrainedSource`.

    A thread reads the fitted models as they come, so the child never waits
    for the strategy; calling the trainer for D waits until D's fit is in.
    """

    def __init__(self, settings: Settings, sessions: list[date]) -> None:
        self.settings = settings
        self.dates = retrain_dates(sessions, settings)
        self._results: dict[date, Any] = {}
        self._failure: BaseException | None = None
        self._done = False
        self._changed = threading.Condition()
        self.worker = WorkerProcess("training", "quant.backtest._trainer:work")
        self.worker.send((settings, sessions, self.dates))
        self._reader = threading.Thread(target=self._read, name="quant-backtest-trainer",
                                        daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            while True:
                kind, day, payload = self.worker.receive()
                with self._changed:
                    if kind == "done":
                        self._done = True
                        self._changed.notify_all()
                        return
                    self._results[day] = payload if kind == "model" else None
                    self._changed.notify_all()
        except BaseException as exc:  # an error of the child's, or the pipes closed by stop()
            with self._changed:
                self._failure = exc
                self._changed.notify_all()

    def __call__(self, day: date, settings: Settings) -> TrainedModel | None:
        """D's fitted model (waiting for it), or None when D was not planned or fits inline."""
        if day not in self.dates or settings.model != self.settings.model:
            return None
        with self._changed:
            while day not in self._results:
                if self._failure is not None:
                    if isinstance(self._failure, BacktestError):
                        raise self._failure
                    raise BacktestError(f"training: {self._failure}") from self._failure
                if self._done:
                    return None
                self._changed.wait(timeout=1.0)
            return self._results.pop(day)

    def stop(self) -> None:
        """End the process (whatever it still has to fit) and the reading thread."""
        self.worker.stop()
        self._reader.join(timeout=10)


def work(receive: Connection, send: Connection) -> None:
    """The child: fit each date's model in order and send it."""
    from quant.db import RelationCache, connect
    from quant.exceptions import TrainingDataError
    from quant.model import cache_model_inputs, fit_model

    settings, sessions, dates = receive.recv()
    conn = connect(settings)
    try:
        cache = RelationCache()
        cache_model_inputs(conn, cache, sessions[0], sessions[-1], settings)
        conn.commit()
        with one_blas_thread():
            for day in dates:
                try:
                    send.send(("model", day, fit_model(conn, day, settings, cache=cache)))
                except TrainingDataError as exc:
                    send.send(("none", day, str(exc)))  # the retrain meets it and decides
                conn.rollback()
        send.send(("done", None, None))
    finally:
        conn.close()
