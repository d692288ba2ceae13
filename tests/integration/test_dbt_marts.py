"""The dbt marts on real PostgreSQL with real dbt, over the synthetic market.

One module-scoped build: 30 synthetic names ingested over ~360 sessions, then
the dbt project built as of each of 60 consecutive sessions (incremental, like
the daily DAG). The tests compare that state with full rebuilds, reruns and
rebuilds over altered future data, and check the financial rules against the
raw data the provider delivered.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from quant.calendar import get_calendar
from quant.config import Settings, load_settings
from quant.testing.db import execute, query
from quant.testing.marts import dbt_as_of, drop_marts, reset_pipeline

pytestmark = pytest.mark.integration

SYMBOLS = 30
SESSIONS = 60
MARTS = ("intermediate.int_prices_adjusted", "marts.universe", "marts.features", "marts.labels")


def _snapshot(settings: Settings, table: str, until: date | None = None) -> list[tuple]:
    where = "where session_date <= %s" if until else ""
    args = (until,) if until else ()
    return query(settings, f"select * from {table} {where} order by symbol, session_date", *args)


def _build(settings: Settings, session: date, *extra: str) -> None:
    dbt_as_of(settings, session, ("run", "--quiet", *extra))


@pytest.fixture(scope="module")
def market(pg_settings: Settings) -> Iterator[dict[str, Any]]:
    """Raw data ingested, then the project built session by session over 60 sessions."""
    from quant.data import SyntheticProvider, ingest_bars

    settings = load_settings(synthetic={"symbols": SYMBOLS})
    provider = SyntheticProvider(symbols=SYMBOLS, seed=settings.synthetic.seed)
    reference = provider.symbols()
    delisted = reference[reference["delisted_at"].notna()].iloc[0]
    delisting = delisted["delisted_at"].date()
    cal = get_calendar(settings.exchange)
    end = cal.shift(delisting, 15)
    first = cal.shift(end, -(SESSIONS - 1))
    sessions = cal.sessions(first, end)
    history_start = cal.shift(first, -300)

    reset_pipeline(settings)
    ingest_bars(end, start=history_start, settings=settings, provider=provider)

    # the first session builds everything (and runs every test); the rest run incrementally
    dbt_as_of(settings, sessions[0], ("build", "--quiet"))
    for session in sessions[1:]:
        _build(settings, session)
    incremental = {table: _snapshot(settings, table) for table in MARTS}
    yield {
        "settings": settings,
        "provider": provider,
        "sessions": sessions,
        "history_start": history_start,
        "delisted": delisted["symbol"],
        "delisting": delisting,
        "incremental": incremental,
    }
    # leave no marts built from this module's (altered) data to later tests
    drop_marts(settings)


def test_marts_when_built_day_by_day_then_equal_to_full_rebuild(market: dict[str, Any]) -> None:
    settings, end = market["settings"], market["sessions"][-1]
    for table in MARTS:
        assert market["incremental"][table], f"{table} is empty"
    _build(settings, end, "--full-refresh")
    for table in MARTS:
        assert _snapshot(settings, table) == market["incremental"][table], table
    built = query(settings, "select max(session_date) from marts.features")[0][0]
    assert built == end


def test_marts_when_session_built_again_then_no_row_changes(market: dict[str, Any]) -> None:
    settings, end = market["settings"], market["sessions"][-1]
    before = {table: _snapshot(settings, table) for table in MARTS}
    _build(settings, end)
    for table in MARTS:
        assert _snapshot(settings, table) == before[table], table


def test_marts_when_built_then_tests_pass(market: dict[str, Any]) -> None:
    import json

    from quant.transform import ensure_manifest

    settings = market["settings"]
    result = dbt_as_of(settings, market["sessions"][-1], ("test", "--quiet"))
    nodes = json.loads(ensure_manifest().read_text())["nodes"].values()
    assert result.tests_passed == sum(1 for node in nodes if node["resource_type"] == "test")
    assert all(status == "pass" for status in result.nodes.values()), result.nodes


def test_adjusted_returns_when_split_or_dividend_then_equal_total_return_and_continuous(
    market: dict[str, Any],
) -> None:
    settings, provider = market["settings"], market["provider"]
    actions = provider.corporate_actions(market["history_start"], market["sessions"][-1])
    splits = actions[actions["action_type"] == "split"]
    dividends = actions[actions["action_type"] == "dividend"]
    assert len(splits) >= 1 and len(dividends) >= 1, "the synthetic market should have both"
    for action in actions.itertuples():
        ex_date = action.ex_date.date()
        raw = query(
            settings,
            "select date, close from raw.bars where symbol = %s and date <= %s order by date desc limit 2",
            action.symbol, ex_date,
        )
        if len(raw) < 2 or raw[0][0] != ex_date:
            continue
        close, previous_close = raw[0][1], raw[1][1]
        ratio = 1.0 if math.isnan(action.split_ratio) else action.split_ratio
        dividend = 0.0 if math.isnan(action.dividend_usd) else action.dividend_usd
        expected = (close * ratio + dividend) / previous_close - 1
        rows = query(
            settings,
            """
            select session_date, total_return, adj_close_usd from intermediate.int_prices_adjusted
            where symbol = %s and session_date <= %s order by session_date desc limit 2
            """,
            action.symbol, ex_date,
        )
        (day, total_return, adj_close), (_, _, previous_adj_close) = rows
        assert day == ex_date
        assert total_return == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert adj_close / previous_adj_close - 1 == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert abs(total_return) < 0.2, f"{action.symbol} {ex_date}: a {action.action_type} jumps"
        if action.action_type == "split":
            assert abs(close / previous_close - 1) > 0.3, "the raw price does jump on a split"


def test_universe_when_name_delisted_then_included_before_and_excluded_from_delisting(
    market: dict[str, Any],
) -> None:
    settings, symbol, delisting = market["settings"], market["delisted"], market["delisting"]
    cal = get_calendar(settings.exchange)
    before = cal.previous_session(delisting)
    rows = dict(
        query(
            settings,
            "select session_date, is_tradable from marts.universe where symbol = %s",
            symbol,
        )
    )
    assert rows[before] is True
    assert rows.get(delisting) in (False, None)
    assert not any(tradable for day, tradable in rows.items() if day >= delisting)
    later = cal.next_session(delisting)
    listed = query(
        settings,
        "select count(*) from marts.universe where session_date = %s and is_tradable",
        later,
    )[0][0]
    assert listed > 0  # the others stay


def test_universe_when_name_listed_late_then_absent_before_listing_and_history_required(
    market: dict[str, Any],
) -> None:
    settings, provider = market["settings"], market["provider"]
    reference = provider.symbols()
    late = reference[reference["listed_at"] > reference["listed_at"].min()].iloc[0]
    listing = late["listed_at"].date()
    rows = query(
        settings,
        "select session_date, history_sessions, has_enough_history from marts.universe "
        "where symbol = %s order by session_date",
        late["symbol"],
    )
    assert rows and rows[0][0] >= listing
    assert all(has == (history >= 126) for _, history, has in rows)


def test_features_when_later_data_altered_then_features_up_to_d_unchanged(
    market: dict[str, Any],
) -> None:
    settings, sessions = market["settings"], market["sessions"]
    cutoff = sessions[len(sessions) // 2]
    features_before = _snapshot(settings, "marts.features", until=cutoff)
    labels_before = _snapshot(settings, "marts.labels", until=cutoff)
    assert features_before
    # rewrite history after the cutoff: prices jump, a split appears, a new name trades
    execute(
        settings,
        "update raw.bars set open = open * 1.7, high = high * 1.7, low = low * 1.7, "
        "close = close * 1.7 where date > %s and symbol <= 'SYN010'",
        cutoff,
    )
    later = get_calendar(settings.exchange).next_session(cutoff)
    execute(
        settings,
        "insert into raw.corporate_actions (symbol, ex_date, action_type, provider, split_ratio) "
        "values ('SYN012', %s, 'split', 'synthetic', 3.0) on conflict do nothing",
        later,
    )
    execute(
        settings,
        "insert into raw.bars (symbol, date, provider, open, high, low, close, volume) "
        "select 'NEW001', date, provider, open, high, low, close, volume from raw.bars "
        "where symbol = 'SYN013' and date > %s",
        cutoff,
    )
    _build(settings, sessions[-1], "--full-refresh")
    assert _snapshot(settings, "marts.features", until=cutoff) == features_before
    # the labels of the last sessions before the cutoff do look ahead, by design
    assert _snapshot(settings, "marts.labels", until=cutoff) != labels_before
