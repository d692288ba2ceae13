"""A helper process of the backtest: ``python -c`` running a function, two pipes to it.

Messages are pickled Python objects (:class:`multiprocessing.connection.Connection`).
The child runs ``work(receive, send)``; whatever it raises is sent back as
``("error", "<Type>: <message>")`` and the parent raises it as BacktestError.
A child whose parent went away reads the end of its input and exits.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from quant.exceptions import BacktestError

__all__ = ["WorkerProcess", "run_worker"]

_WAIT_S = 1.0
_ENTRY = (
    "import sys; from quant.backtest._process import run_worker; "
    "sys.exit(run_worker(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))"
)


class WorkerProcess:
    """The parent's side: start, send, receive in order, stop.

    Parameters
    ----------
    name : str
        What the process does, for error messages (``"baselines"``).
    target : str
        ``"module:function"`` the child runs as ``function(receive, send)``.
    """

    def __init__(self, name: str, target: str) -> None:
        self.name = name
        to_child, from_parent = os.pipe()
        to_parent, from_child = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, "-c", _ENTRY, target, str(to_child), str(from_child)],
            pass_fds=(to_child, from_child),
        )
        os.close(to_child)
        os.close(from_child)
        self._send = Connection(from_parent, readable=False)
        self._receive = Connection(to_parent, writable=False)

    def _ended(self) -> BacktestError:
        return BacktestError(
            f"{self.name}: the process ended (exit code {self.process.returncode})"
        )

    def _checked(self, message: Any) -> Any:
        if isinstance(message, tuple) and message and message[0] == "error":
            raise BacktestError(f"{self.name}: {message[1]}")
        return message

    def send(self, message: Any) -> None:
        """Send ``message``; raises when the child has failed or ended."""
        if self._receive.poll():  # the child speaks first only to report a failure
            self._checked(self._receive.recv())
        if self.process.poll() is not None:
            raise self._ended()
        self._send.send(message)

    def receive(self) -> Any:
        """The child's next message (waits for it); raises when it failed or ended."""
        while not self._receive.poll(_WAIT_S):
            if self.process.poll() is not None and not self._receive.poll():
                raise self._ended()
        return self._checked(self._receive.recv())

    def stop(self) -> None:
        """Close the pipes and end the child (at once if it waits for input)."""
        for end in (self._send, self._receive):
            end.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def run_worker(target: str, read_fd: int, write_fd: int) -> int:
    """The child's side: run ``target(receive, send)``; 0, or 1 after a failure."""
    import importlib

    module, _, function = target.partition(":")
    work: Callable[[Connection, Connection], None] = getattr(
        importlib.import_module(module), function
    )
    receive = Connection(read_fd, writable=False)
    send = Connection(write_fd, readable=False)
    try:
        work(receive, send)
    except EOFError:
        return 1  # the parent went away
    except BaseException as exc:  # whatever it is, the parent must hear of it
        with contextlib.suppress(OSError):  # unless it has gone away
            send.send(("error", f"{type(exc).__name__}: {exc}"))
        return 1
    return 0
