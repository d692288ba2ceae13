"""The trading-session timetable: runs only for sessions, after the (early) close."""

from __future__ import annotations

import sys
from datetime import date, datetime, time, timedelta, timezone

import exchange_calendars as xcals
import pandas as pd
import pendulum
import pytest
from airflow.timetables.base import DataInterval, TimeRestriction

from quant.calendar import get_calendar
from quant.orchestration import logical_datetime, project_root

sys.path.insert(0, str(project_root() / "plugins"))
from trading_calendar import TradingCalendarPlugin, TradingSessionTimetable  # noqa: E402

NEW_YORK = "America/New_York"


def _utc(year: int, month: int, day: int, hour: int, minute: int = 0, tz: str = "UTC") -> datetime:
    return pendulum.datetime(year, month, day, hour, minute, tz=tz).in_timezone("UTC")


def _interval_of(timetable: TradingSessionTimetable, session: date) -> DataInterval:
    return timetable.infer_manual_data_interval(run_after=timetable.calendar.close_at(session))


def test_next_dagrun_when_next_day_is_holiday_then_skipped_and_early_close_honoured() -> None:
    tt = TradingSessionTimetable("XNYS", time(1, 0))
    last = _interval_of(tt, date(2025, 11, 26))  # Wednesday before Thanksgiving
    info = tt.next_dagrun_info(
        last_automated_data_interval=last,
        restriction=TimeRestriction(earliest=None, latest=None, catchup=True),
    )
    # Thanksgiving (Thu 27th) has no session; Friday 28th closes early at 13:00 New York.
    assert info.logical_date == _utc(2025, 11, 28, 13, tz=NEW_YORK)
    assert info.run_after == _utc(2025, 11, 28, 14, tz=NEW_YORK)


def test_next_dagrun_when_friday_then_monday_after_close_plus_offset() -> None:
    tt = TradingSessionTimetable("XNYS", "00:30")
    info = tt.next_dagrun_info(
        last_automated_data_interval=_interval_of(tt, date(2026, 11, 20)),
        restriction=TimeRestriction(earliest=None, latest=None, catchup=True),
    )
    assert info.logical_date == _utc(2026, 11, 23, 16, tz=NEW_YORK)
    assert info.run_after == _utc(2026, 11, 23, 16, 30, tz=NEW_YORK)
    assert info.data_interval.end == info.run_after


def test_next_dagrun_when_first_and_catchup_then_first_session_on_or_after_start() -> None:
    tt = TradingSessionTimetable()
    info = tt.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(
            earliest=_utc(2024, 1, 6, 0), latest=None, catchup=True  # a Saturday
        ),
    )
    assert info.logical_date == _utc(2024, 1, 8, 16, tz=NEW_YORK)


def test_next_dagrun_when_catchup_false_then_latest_session_whose_run_time_passed() -> None:
    tt = TradingSessionTimetable("XNYS", time(1, 0))
    info = tt.next_dagrun_info(
        last_automated_data_interval=_interval_of(tt, date(2024, 3, 1)),
        restriction=TimeRestriction(earliest=_utc(2024, 1, 1, 0), latest=None, catchup=False),
    )
    now = datetime.now(timezone.utc)
    xnys = xcals.get_calendar("XNYS")
    closes = xnys.schedule["close"]
    due = closes[closes + pd.Timedelta(hours=1) <= pd.Timestamp(now)]
    assert info.logical_date == due.iloc[-1].to_pydatetime()
    assert info.run_after <= now


def test_next_dagrun_when_past_latest_then_none() -> None:
    tt = TradingSessionTimetable()
    info = tt.next_dagrun_info(
        last_automated_data_interval=_interval_of(tt, date(2025, 6, 13)),
        restriction=TimeRestriction(earliest=None, latest=_utc(2025, 6, 14, 0), catchup=True),
    )
    assert info is None


def test_next_dagrun_when_iterated_then_exactly_the_exchange_sessions() -> None:
    tt = TradingSessionTimetable()
    restriction = TimeRestriction(earliest=_utc(2025, 12, 20, 0), latest=None, catchup=True)
    info = tt.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    seen = []
    while info.logical_date < _utc(2026, 1, 10, 0):
        seen.append(info.logical_date.astimezone(pendulum.timezone(NEW_YORK)).date())
        info = tt.next_dagrun_info(last_automated_data_interval=info.data_interval, restriction=restriction)
    expected = [
        ts.date() for ts in xcals.get_calendar("XNYS").sessions_in_range("2025-12-20", "2026-01-09")
    ]
    assert seen == expected
    assert date(2025, 12, 25) not in seen and date(2026, 1, 1) not in seen


def test_logical_date_when_mapped_back_then_same_session_as_cli_runs(pg_settings) -> None:  # noqa: ANN001
    tt = TradingSessionTimetable(pg_settings.exchange, pg_settings.run_after_close)
    cal = get_calendar(pg_settings.exchange)
    for session in (date(2025, 11, 28), date(2025, 12, 24), date(2026, 3, 13)):
        interval = _interval_of(tt, session)
        assert cal.session_for_logical_date(interval.start) == session
        assert logical_datetime(session, pg_settings) == interval.start


def test_infer_manual_when_triggered_on_weekend_then_friday_session() -> None:
    tt = TradingSessionTimetable()
    interval = tt.infer_manual_data_interval(run_after=_utc(2026, 11, 22, 12))  # Sunday
    assert tt.session_of(interval) == date(2026, 11, 20)
    assert interval.end - interval.start == timedelta(hours=1)


def test_serialize_when_round_tripped_then_equal_schedule() -> None:
    tt = TradingSessionTimetable("XLON", "02:15")
    back = TradingSessionTimetable.deserialize(tt.serialize())
    assert (back.exchange, back.run_after_close) == ("XLON", time(2, 15))
    session = date(2026, 6, 1)
    assert back.infer_manual_data_interval(run_after=_utc(2026, 6, 1, 18)) == tt.infer_manual_data_interval(
        run_after=_utc(2026, 6, 1, 18)
    )
    assert tt.session_of(tt.infer_manual_data_interval(run_after=_utc(2026, 6, 1, 18))) == session


def test_plugin_when_loaded_then_registers_the_timetable() -> None:
    assert TradingSessionTimetable in TradingCalendarPlugin.timetables


def test_timetable_when_dag_serialized_then_deserializes_through_plugin(airflow_db) -> None:  # noqa: ANN001
    from airflow.serialization.decoders import decode_timetable
    from airflow.serialization.encoders import encode_timetable

    tt = TradingSessionTimetable("XNYS", "01:00")
    encoded = encode_timetable(tt)
    assert encoded["__type"].endswith("trading_calendar.TradingSessionTimetable")
    decoded = decode_timetable(encoded)
    assert decoded.serialize() == tt.serialize()


@pytest.mark.parametrize("exchange", ["NOPE"])
def test_validate_when_unknown_exchange_then_invalid(exchange: str) -> None:
    from airflow.exceptions import AirflowTimetableInvalid

    with pytest.raises(AirflowTimetableInvalid):
        TradingSessionTimetable(exchange).validate()
