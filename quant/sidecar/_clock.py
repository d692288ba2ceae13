"""Market hours and trading sessions for the sidecar, from the exchange calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime

__all__ = ["MarketClock"]


class MarketClock:
    """Answers "is the market open now?" and "which session is this?" cheaply.

    Parameters
    ----------
    exchange : str
        exchange-calendars code (``settings.exchange``).
    """

    def __init__(self, exchange: str = "XNYS") -> None:
        from quant.calendar import get_calendar

        self._cal = get_calendar(exchange)
        self._day: date | None = None
        self._hours: tuple[float, float] | None = None

    def _local_date(self, now: float) -> date:
        return datetime.fromtimestamp(now, UTC).astimezone(self._cal.tz).date()

    def is_open(self, now: float) -> bool:
        """True between the open and the close of a session (UTC POSIX seconds)."""
        day = self._local_date(now)
        if day != self._day:
            self._day = day
            if self._cal.is_session(day):
                self._hours = (
                    self._cal.open_at(day).timestamp(),
                    self._cal.close_at(day).timestamp(),
                )
            else:
                self._hours = None
        return self._hours is not None and self._hours[0] <= now < self._hours[1]

    def session_of(self, now: float) -> str:
        """The session on or before the exchange-local date of ``now``, ``YYYY-MM-DD``."""
        return self._cal.session_on_or_before(self._local_date(now)).isoformat()
