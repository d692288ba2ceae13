"""The bounded retry with exponential backoff that the venues' adapters share.

Every request of the Alpaca provider and broker adapter, and every connection
attempt of the IB broker adapter, goes through :meth:`Backoff.run`: an attempt
that fails in a way worth another try raises :class:`Retryable`; the loop
waits (``backoff_s`` doubled after each failure, at least the server's
``Retry-After`` when it sent one, at most ``max_backoff_s``) and tries again,
at most ``max_attempts`` times, then raises what the caller's ``give_up``
builds from the last failure. Any other exception passes through at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = ["Backoff", "Retryable", "backoff_wait"]

_T = TypeVar("_T")


class Retryable(Exception):
    """Raised by one attempt when it failed in a way worth another attempt (HTTP 429,
    5xx, a timeout, a dropped connection)."""

    def __init__(self, what: str, *, may_have_reached: bool = True, wait_s: float | None = None):
        super().__init__(what)
        self.may_have_reached = may_have_reached
        """Whether the request may have reached the server (a resend could repeat it)."""
        self.wait_s = wait_s
        """The server's ``Retry-After``, seconds, when it sent one."""


def backoff_wait(
    attempt: int, backoff_s: float, max_backoff_s: float, retry_after: float | None = None
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...): ``backoff_s``
    doubled each time, at least the server's ``Retry-After``, at most ``max_backoff_s``."""
    wait = min(backoff_s * 2 ** (attempt - 1), max_backoff_s)
    if retry_after is not None:
        wait = min(max(wait, retry_after), max_backoff_s)
    return wait


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """How often to try and how long to wait in between.

    Parameters
    ----------
    max_attempts : int
        Attempts before giving up, at least 1.
    backoff_s, max_backoff_s : float
        First wait between attempts, seconds (doubled each time), and the longest.
    sleep : callable
        How to wait (tests pass a recorder).

    Raises
    ------
    ValueError
        ``max_attempts`` is below 1.
    """

    max_attempts: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")

    def pause(self, attempt: int, retry_after: float | None = None) -> None:
        """Wait after failed attempt number ``attempt``, unless it was the last."""
        if attempt < self.max_attempts:
            self.sleep(backoff_wait(attempt, self.backoff_s, self.max_backoff_s, retry_after))

    def run(self, attempt: Callable[[], _T], give_up: Callable[[str], Exception]) -> _T:
        """Call ``attempt`` until it returns, at most ``max_attempts`` times.

        Raises
        ------
        Exception
            ``give_up(last)``, ``last`` the message of the last :class:`Retryable`,
            when every attempt raised one; any other exception of ``attempt`` at once.
        """
        last = ""
        for number in range(1, self.max_attempts + 1):
            try:
                return attempt()
            except Retryable as exc:
                last = str(exc)
                self.pause(number, exc.wait_s)
        raise give_up(last)
