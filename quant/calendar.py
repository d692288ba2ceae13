"""The trading calendar used by every stage, the CLI and the Airflow timetable.

Built on ``exchange-calendars`` (XNYS by default): sessions, holidays and early
closes come from it. A run for session ``D`` reads only data knowable at D's
close.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

import pandas as pd

from quant.exceptions import ConfigurationError, QuantError

__all__ = ["NotASessionError", "TradingCalendar", "get_calendar"]

_FIRST = date(2010, 1, 1)


class NotASessionError(QuantError):
    """Raised when a date that is not a trading session is used as one."""


class TradingCalendar:
    """Sessions of one exchange.

    Parameters
    ----------
    exchange : str
        exchange-calendars code, e.g. ``"XNYS"``.
    """

    def __init__(self, exchange: str = "XNYS") -> None:
        import exchange_calendars as xcals

        try:
            self._cal = xcals.get_calendar(exchange, start=pd.Timestamp(_FIRST))
        except xcals.errors.InvalidCalendarName as exc:
            raise ConfigurationError(f"QUANT_EXCHANGE: unknown exchange calendar {exchange!r}") from exc
        self.exchange = exchange
        self.tz = self._cal.tz
        index = self._cal.sessions
        self._sessions: list[date] = [ts.date() for ts in index]
        self._positions = {d: i for i, d in enumerate(self._sessions)}
        self._times: dict[tuple[str, date], datetime] = {}  # (open|close, session) -> UTC

    # -- queries ------------------------------------------------------------------------
    @property
    def first_session(self) -> date:
        return self._sessions[0]

    @property
    def last_session(self) -> date:
        return self._sessions[-1]

    def is_session(self, day: date) -> bool:
        return day in self._positions

    def require_session(self, day: date) -> date:
        """Return ``day`` if it is a session, else raise :class:`NotASessionError`."""
        if day not in self._positions:
            raise NotASessionError(f"{day.isoformat()} is not a {self.exchange} trading session")
        return day

    def sessions(self, start: date, end: date) -> list[date]:
        """Sessions in ``[start, end]``, oldest first."""
        import bisect

        lo = bisect.bisect_left(self._sessions, start)
        hi = bisect.bisect_right(self._sessions, end)
        return self._sessions[lo:hi]

    def session_on_or_before(self, day: date) -> date:
        import bisect

        i = bisect.bisect_right(self._sessions, day) - 1
        if i < 0:
            raise NotASessionError(f"no {self.exchange} session on or before {day}")
        return self._sessions[i]

    def previous_session(self, day: date) -> date:
        return self.session_on_or_before(day - timedelta(days=1))

    def next_session(self, day: date) -> date:
        import bisect

        i = bisect.bisect_right(self._sessions, day)
        if i >= len(self._sessions):
            raise NotASessionError(f"no {self.exchange} session after {day} in the calendar")
        return self._sessions[i]

    def shift(self, day: date, sessions: int) -> date:
        """The session ``sessions`` sessions after (or before, if negative) session ``day``."""
        i = self._positions[self.require_session(day)] + sessions
        if not 0 <= i < len(self._sessions):
            raise NotASessionError(f"{sessions} sessions from {day} is outside the calendar")
        return self._sessions[i]

    def _time(self, which: str, day: date) -> datetime:
        """The UTC time of ``day``'s open or close, looked up once per session (a backtest
        asks for every session's times several times)."""
        known = self._times.get((which, day))
        if known is None:
            ts = pd.Timestamp(self.require_session(day))
            at = self._cal.session_open(ts) if which == "open" else self._cal.session_close(ts)
            known = self._times[which, day] = at.to_pydatetime().astimezone(timezone.utc)
        return known

    def close_at(self, day: date) -> datetime:
        """UTC time of the close of session ``day`` (early closes included)."""
        return self._time("close", day)

    def open_at(self, day: date) -> datetime:
        """UTC time of the open of session ``day``."""
        return self._time("open", day)

    def latest_closed_session(self, now: datetime | None = None) -> date:
        """The most recent session whose close is at or before ``now`` (UTC, default: now)."""
        now = now or datetime.now(timezone.utc)
        day = self.session_on_or_before(now.astimezone(timezone.utc).date())
        while self.close_at(day) > now:
            day = self.previous_session(day)
        return day

    def session_for_logical_date(self, logical_date: datetime | date) -> date:
        """The session a daily run with this logical date is for.

        A datetime is read in the exchange's time zone; the run is for that
        calendar day, which must be a session.
        """
        if isinstance(logical_date, datetime):
            if logical_date.tzinfo is None:
                logical_date = logical_date.replace(tzinfo=timezone.utc)
            day = logical_date.astimezone(self.tz).date()
        else:
            day = logical_date
        return self.require_session(day)

    def session_for_run(self, logical_date: datetime | date | None, run_after: datetime) -> date:
        """The session a DAG run is for.

        With a logical date, :meth:`session_for_logical_date` (a date that is not
        a session raises :class:`NotASessionError`); without one (a manual run
        triggered with no logical date), the latest session closed at ``run_after``.
        """
        if logical_date is not None:
            return self.session_for_logical_date(logical_date)
        return self.latest_closed_session(run_after)


@lru_cache(maxsize=8)
def get_calendar(exchange: str = "XNYS") -> TradingCalendar:
    """A cached calendar for ``exchange``."""
    return TradingCalendar(exchange)
