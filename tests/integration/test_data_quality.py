"""Data-quality gates on raw bars: each injected fault is caught and named; clean data passes."""

from __future__ import annotations

from datetime import date

import pytest

from quant.calendar import get_calendar
from quant.config import Settings, load_settings
from quant.data import SyntheticProvider, ingest_bars
from quant.quality import DataQualityError, run_data_quality
from quant.testing.db import execute, query, scalar

pytestmark = pytest.mark.integration

SYMBOLS = 30


@pytest.fixture()
def small(clean_db: Settings) -> Settings:
    return load_settings(synthetic={"symbols": SYMBOLS}, history_sessions=80)


@pytest.fixture()
def session(small: Settings) -> date:
    day = get_calendar(small.exchange).latest_closed_session()
    ingest_bars(day, settings=small)
    return day


def _first_symbol(settings: Settings, day: date) -> str:
    return scalar(settings, "select min(symbol) from raw.bars where date = %s", day)


def _fails_with(settings: Settings, day: date, check: str) -> str:
    with pytest.raises(DataQualityError) as info:
        run_data_quality(day, run_id=f"test-{check}", settings=settings, include_marts=False)
    message = str(info.value)
    assert check in message, message
    return message


def test_data_quality_when_data_clean_then_passes_and_records(small: Settings, session: date) -> None:
    report = run_data_quality(session, run_id="clean", settings=small, include_marts=False)
    assert report.blocking_failures == []
    assert report.summary()["passed"] == len(report.results) >= 10
    count, all_ok = query(
        small, "select count(*), bool_and(success) from ops.dq_results where run_id = 'clean'"
    )[0]
    assert count == len(report.results) and all_ok


def test_data_quality_when_close_is_nan_then_fails_naming_symbol(small: Settings, session: date) -> None:
    symbol = _first_symbol(small, session)
    execute(small, "update raw.bars set close = 'NaN' where symbol = %s and date = %s", symbol, session)
    message = _fails_with(small, session, "raw_bars.prices_finite")
    assert symbol in message and "NaN" in message


def test_data_quality_when_price_negative_then_fails_naming_symbol(small: Settings, session: date) -> None:
    symbol = _first_symbol(small, session)
    execute(
        small,
        "update raw.bars set close = -5, low = -5 where symbol = %s and date = %s",
        symbol, session,
    )
    message = _fails_with(small, session, "raw_bars.prices_positive")
    assert symbol in message and "-5" in message


def test_data_quality_when_tenfold_spike_without_action_then_fails(small: Settings, session: date) -> None:
    symbol = _first_symbol(small, session)
    execute(
        small,
        "update raw.bars set open = open * 10, high = high * 10, low = low * 10, close = close * 10 "
        "where symbol = %s and date = %s",
        symbol, session,
    )
    message = _fails_with(small, session, "raw_bars.no_unexplained_jump")
    assert symbol in message


def test_data_quality_when_duplicate_rows_then_fails(small: Settings, session: date) -> None:
    symbol = _first_symbol(small, session)
    execute(
        small,
        """
        insert into raw.bars (symbol, date, provider, open, high, low, close, volume)
        select symbol, date, 'csv', open, high, low, close, volume from raw.bars
        where symbol = %s and date = %s
        """,
        symbol, session,
    )
    message = _fails_with(small, session, "raw_bars.one_row_per_symbol_and_date")
    assert symbol in message


def test_data_quality_when_half_the_universe_missing_then_fails(small: Settings, session: date) -> None:
    execute(
        small,
        """
        delete from raw.bars where date = %s and symbol in (
            select symbol from raw.bars where date = %s order by symbol limit %s)
        """,
        session, session, SYMBOLS // 2,
    )
    message = _fails_with(small, session, "raw_bars.universe_coverage")
    assert "SYN001" in message  # the missing names are listed


def test_data_quality_when_feed_stops_a_day_early_then_fails_as_stale(
    small: Settings, session: date
) -> None:
    execute(small, "delete from raw.bars where date = %s", session)
    message = _fails_with(small, session, "raw_bars.feed_not_stale")
    previous = get_calendar(small.exchange).previous_session(session)
    assert previous.isoformat() in message


def test_data_quality_when_genuine_split_then_jump_check_passes(clean_db: Settings) -> None:
    settings = load_settings(synthetic={"symbols": SYMBOLS}, history_sessions=80)
    cal = get_calendar(settings.exchange)
    last = cal.latest_closed_session()
    provider = SyntheticProvider(symbols=SYMBOLS, seed=settings.synthetic.seed)
    actions = provider.corporate_actions(cal.shift(last, -400), last)
    splits = actions[actions["action_type"] == "split"]
    assert not splits.empty, "the synthetic market should have a split in the window"
    ex_date = splits["ex_date"].iloc[-1]
    ex_date = ex_date.date() if hasattr(ex_date, "date") else ex_date
    ingest_bars(ex_date, settings=settings)
    report = run_data_quality(ex_date, run_id="split", settings=settings, include_marts=False)
    jump = next(r for r in report.results if r.name == "raw_bars.no_unexplained_jump")
    assert jump.success, jump.describe()
    # without the action the same move is flagged: the check is not blind
    execute(settings, "delete from raw.corporate_actions where action_type = 'split' and ex_date = %s", ex_date)
    with pytest.raises(DataQualityError, match="no_unexplained_jump"):
        run_data_quality(ex_date, run_id="split-unexplained", settings=settings, include_marts=False)


def test_data_quality_when_run_then_data_docs_written_naming_suites(small: Settings, session: date) -> None:
    report = run_data_quality(session, run_id="docs", settings=small, include_marts=False)
    index = report.data_docs
    assert index.exists()
    text = index.read_text()
    for suite in ("raw_bars", "raw_bars_coverage", "raw_bars_freshness"):
        assert suite in text


def test_quarantine_view_when_bad_row_then_listed_with_reason(small: Settings, session: date) -> None:
    symbol = _first_symbol(small, session)
    execute(small, "update raw.bars set close = -1 where symbol = %s and date = %s", symbol, session)
    (reasons,) = query(
        small,
        "select reasons from raw.quarantined_bars where symbol = %s and date = %s",
        symbol,
        session,
    )[0]
    assert "NON_POSITIVE_PRICE" in reasons and "OHLC_INCONSISTENT" in reasons


def test_warn_only_when_check_demoted_then_recorded_not_raised(clean_db: Settings) -> None:
    settings = load_settings(
        synthetic={"symbols": SYMBOLS}, history_sessions=80,
        quality={"warn_only": ["raw_bars.prices_positive", "raw_bars.ohlc_consistent",
                               "raw_bars.no_unexplained_jump"]},
    )
    day = get_calendar(settings.exchange).latest_closed_session()
    ingest_bars(day, settings=settings)
    symbol = _first_symbol(settings, day)
    execute(settings, "update raw.bars set close = -1 where symbol = %s and date = %s", symbol, day)
    report = run_data_quality(day, run_id="warn", settings=settings, include_marts=False)
    assert "raw_bars.prices_positive" in {w.name for w in report.warnings}


def test_data_quality_when_held_symbol_has_no_bar_then_warns_naming_it(
    small: Settings, session: date
) -> None:
    symbol = _first_symbol(small, session)
    execute(small, "delete from raw.bars where symbol = %s and date = %s", symbol, session)
    # the DAG's account holds it (its latest run, the session before)
    before = get_calendar(small.exchange).previous_session(session)
    execute(
        small,
        "insert into ops.execution_runs (namespace, logical_date, run_id, dag_id, run_type, broker, "
        "account, trading_mode, risk_check, choice_reason, equity_usd, cash_usd) values "
        "('daily_trading', %s, 'r', 'daily_trading', 'scheduled', 'sim', 'paper', 'paper', "
        "'sidecar', 'test', 1e6, 9e5)",
        before,
    )
    execute(small, "insert into ops.positions (broker, account, symbol, qty_shares, avg_price_usd) "
            "values ('sim', 'paper', %s, 100, 10), ('sim', 'paper', 'HELDFLAT', 0, 0)", symbol)
    report = run_data_quality(session, run_id="held", settings=small, include_marts=False)
    assert report.blocking_failures == []
    held = [w for w in report.warnings if w.name == "positions.held_symbol_has_bar"]
    assert len(held) == 1 and symbol in held[0].describe(), report.warnings


@pytest.mark.parametrize(
    ("change", "mark"),
    [
        ("open = close, high = close, low = close", "flat_share=1"),
        ("volume = 1000000", "distinct_volumes=1"),
    ],
)
def test_data_quality_when_bars_look_adjusted_then_warning_naming_symbol_not_failure(
    small: Settings, session: date, change: str, mark: str
) -> None:
    symbol = _first_symbol(small, session)
    execute(small, f"update raw.bars set {change} where symbol = %s", symbol)
    report = run_data_quality(session, run_id="adjusted", settings=small, include_marts=False)
    assert report.blocking_failures == []
    (warning,) = [w for w in report.warnings if w.name == "raw_bars.look_unadjusted"]
    assert [row["symbol"] for row in warning.unexpected] == [symbol]
    assert mark in warning.describe()
    recorded = scalar(
        small,
        "select success from ops.dq_results where run_id = 'adjusted' "
        "and check_name = 'raw_bars.look_unadjusted'",
    )
    assert recorded is False
