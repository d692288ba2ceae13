"""cache_market_inputs: bars and ADV from memory equal what raw.bars gives through SQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from quant.db import RelationCache
from quant.execution import cache_market_inputs
from quant.execution._market import average_daily_volume, session_bars

DAYS = [date(2021, 3, 1) + timedelta(days=i) for i in range(15)]
CHAIN = ["alpaca", "synthetic"]


@pytest.fixture()
def bars(clean_db, db_conn):
    """Three names over 15 dates from two providers; gaps, and volumes that do not divide."""
    rows = []
    for i, day in enumerate(DAYS):
        for j, name in enumerate(["AAA", "BBB", "CCC"]):
            if name == "BBB" and i % 4 == 1:
                continue  # BBB misses some dates
            if name == "CCC" and i < 6:
                continue  # CCC starts late
            volume = 1000 * (i + 1) + 7 * j + (i * j) % 3
            price = 10.0 + i + j / 3
            rows.append((name, day, "synthetic", price, price + 1, price - 1, price + 0.5, volume))
            if name == "AAA" and i % 3 == 0:  # the preferred provider disagrees on some dates
                rows.append((name, day, "alpaca", price + 0.25, price + 1, price - 1, price + 0.75,
                             volume + 11))
    with db_conn.cursor() as cur:
        cur.executemany(
            "insert into raw.bars (symbol, date, provider, open, high, low, close, volume) "
            "values (%s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
    db_conn.commit()
    return rows


@pytest.mark.parametrize("adv_sessions", [1, 4, 20])
def test_cached_market_when_given_then_bars_and_adv_equal_sql(db_conn, bars, adv_sessions):
    start, end = DAYS[3], DAYS[-1]
    cache = RelationCache()
    cache_market_inputs(db_conn, cache, start, end, CHAIN, adv_sessions)
    for day in DAYS[3:]:
        expected_bars = session_bars(db_conn, day, CHAIN)
        expected_some = session_bars(db_conn, day, CHAIN, ["aaa", "CCC"])
        expected_adv = average_daily_volume(db_conn, day, CHAIN, adv_sessions)
        assert session_bars(db_conn, day, CHAIN, cache=cache) == expected_bars
        assert session_bars(db_conn, day, CHAIN, ["aaa", "CCC"], cache=cache) == expected_some
        assert average_daily_volume(db_conn, day, CHAIN, adv_sessions, cache=cache) == expected_adv
    assert session_bars(db_conn, DAYS[12], CHAIN)["AAA"].open == 22.25  # alpaca wins the chain


def test_cached_market_when_other_window_asked_then_sql_answers(db_conn, bars):
    cache = RelationCache()
    cache_market_inputs(db_conn, cache, DAYS[3], DAYS[-1], CHAIN, 4)
    expected = average_daily_volume(db_conn, DAYS[8], CHAIN, 5)
    before_range = session_bars(db_conn, DAYS[1], CHAIN)
    assert average_daily_volume(db_conn, DAYS[8], CHAIN, 5, cache=cache) == expected
    assert session_bars(db_conn, DAYS[1], CHAIN, cache=cache) == before_range
    assert set(expected) == {"AAA", "BBB", "CCC"}
