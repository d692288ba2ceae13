"""The trading-calendar timetable: one DAG run per exchange session, after its close.

``TradingSessionTimetable(exchange="XNYS", run_after_close=time(1, 0))`` schedules
a run for every session of the exchange calendar (``quant.calendar``, built on
exchange-calendars) and for nothing else: weekends and holidays have no run.
The run of session D has the data interval ``[close(D), close(D) + offset)``,
so its logical date is D's close (an early close included: 13:00 New York on
the day after Thanksgiving) and it starts at the close plus ``run_after_close``.
``TradingCalendar.session_for_logical_date`` maps the logical date back to D,
and ``quant.orchestration.logical_datetime(D)`` gives the same instant, so the
CLI's in-process runs and the scheduler's runs agree.

Registered through :class:`TradingCalendarPlugin` so the scheduler can
deserialize it; the DAG file imports the class from this module.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import pendulum
from airflow.plugins_manager import AirflowPlugin
from airflow.timetables.base import DagRunInfo, DataInterval, Timetable

__all__ = ["TradingCalendarPlugin", "TradingSessionTimetable"]


def _parse_time(value: time | str) -> time:
    if isinstance(value, time):
        return value
    return time.fromisoformat(value)


def _aware(value: datetime) -> pendulum.DateTime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return pendulum.instance(value.astimezone(timezone.utc))


class TradingSessionTimetable(Timetable):
    """Runs only for the sessions of an exchange, ``run_after_close`` after each close.

    Parameters
    ----------
    exchange : str, default "XNYS"
        exchange-calendars code.
    run_after_close : datetime.time or "HH:MM", default 01:00
        Delay after the session's close (early closes included) before the run starts.
    """

    def __init__(self, exchange: str = "XNYS", run_after_close: time | str = time(1, 0)) -> None:
        self.exchange = exchange
        self.run_after_close = _parse_time(run_after_close)
        self._offset = timedelta(
            hours=self.run_after_close.hour, minutes=self.run_after_close.minute
        )
        self.description = (
            f"{exchange} sessions, {self.run_after_close.strftime('%H:%M')} after the close"
        )

    # -- calendar helpers ------------------------------------------------------------------
    @property
    def calendar(self) -> Any:
        from quant.calendar import get_calendar

        return get_calendar(self.exchange)

    def _interval(self, session: date) -> DataInterval:
        close = self.calendar.close_at(session)
        return DataInterval(start=_aware(close), end=_aware(close + self._offset))

    def _first_session_closing_at_or_after(self, moment: datetime) -> date | None:
        cal = self.calendar
        local_day = moment.astimezone(cal.tz).date()
        try:
            day = cal.session_on_or_before(local_day)
        except Exception:
            day = cal.first_session
        try:
            while cal.close_at(day) < moment:
                day = cal.next_session(day)
        except Exception:  # past the end of the exchange calendar
            return None
        return day

    def _last_session_run_by(self, moment: datetime) -> date | None:
        """The latest session whose run time (close + offset) is at or before ``moment``."""
        cal = self.calendar
        try:
            day = cal.session_on_or_before(moment.astimezone(cal.tz).date())
            while cal.close_at(day) + self._offset > moment:
                day = cal.previous_session(day)
        except Exception:  # before the start of the exchange calendar
            return None
        return day

    def session_of(self, interval: DataInterval) -> date:
        """The session a data interval of this timetable belongs to."""
        return self.calendar.session_for_logical_date(interval.start)

    # -- Timetable protocol ----------------------------------------------------------------
    @property
    def summary(self) -> str:
        return self.description

    def serialize(self) -> dict[str, Any]:
        return {
            "exchange": self.exchange,
            "run_after_close": self.run_after_close.strftime("%H:%M"),
        }

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> TradingSessionTimetable:
        return cls(exchange=data["exchange"], run_after_close=data["run_after_close"])

    def validate(self) -> None:
        from airflow.exceptions import AirflowTimetableInvalid

        try:
            self.calendar  # noqa: B018 - builds (and so checks) the calendar
        except Exception as exc:
            raise AirflowTimetableInvalid(str(exc)) from exc

    def infer_manual_data_interval(self, *, run_after: datetime) -> DataInterval:
        """The interval of the latest session closed at ``run_after``.

        A manual run (or ``dag.test`` with a logical date) at the close of session D
        or later, before the next close, is for D.
        """
        cal = self.calendar
        moment = run_after.astimezone(timezone.utc)
        day = cal.session_on_or_before(moment.astimezone(cal.tz).date())
        while cal.close_at(day) > moment:
            day = cal.previous_session(day)
        return self._interval(day)

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: Any,
    ) -> DagRunInfo | None:
        """The next session's run: after the last automated one, or from the start date.

        Without catchup, sessions already past are skipped to the latest one whose
        run time has come (the same as Airflow's own timetables).
        """
        cal = self.calendar
        if last_automated_data_interval is not None:
            try:
                day: date | None = cal.next_session(self.session_of(last_automated_data_interval))
            except Exception:
                return None
        elif restriction.earliest is None:
            return None
        else:
            day = self._first_session_closing_at_or_after(restriction.earliest)
        if day is None:
            return None
        if not restriction.catchup:
            latest = self._last_session_run_by(datetime.now(timezone.utc))
            if latest is not None and latest > day:
                day = latest
            if restriction.earliest is not None:
                earliest = self._first_session_closing_at_or_after(restriction.earliest)
                if earliest is None:
                    return None
                day = max(day, earliest)
        interval = self._interval(day)
        if restriction.latest is not None and interval.start > restriction.latest:
            return None
        return DagRunInfo.interval(start=interval.start, end=interval.end)


class TradingCalendarPlugin(AirflowPlugin):
    """Registers the trading-session timetable with Airflow."""

    name = "trading_calendar"
    timetables = [TradingSessionTimetable]
