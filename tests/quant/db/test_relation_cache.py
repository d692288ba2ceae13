"""RelationCache: relations read once, sliced by session, and the portfolio loaders on it."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from quant.db import RelationCache
from quant.portfolio import load_returns, load_universe

SCHEMA = "test_relation_cache"
DAYS = [date(2024, 1, 1) + timedelta(days=i) for i in range(12)]
NAMES = ["AAA", "BBB", "CCC"]


@pytest.fixture()
def relations(db_conn):
    """A universe and a returns table over 12 days and 3 names, with gaps and nulls."""
    with db_conn.cursor() as cur:
        cur.execute(f"drop schema if exists {SCHEMA} cascade")
        cur.execute(f"create schema {SCHEMA}")
        cur.execute(
            f"create table {SCHEMA}.universe (session_date date, symbol text, sector text, "
            "is_tradable boolean, price numeric)"
        )
        cur.execute(
            f"create table {SCHEMA}.returns (session_date date, symbol text, "
            "total_return double precision)"
        )
        for i, day in enumerate(DAYS):
            for j, name in enumerate(NAMES):
                sector = None if name == "CCC" else f"S{j}"
                cur.execute(
                    f"insert into {SCHEMA}.universe values (%s, %s, %s, %s, %s)",
                    (day, name, sector, (i + j) % 4 != 0, 10.5 + i),
                )
                if name == "BBB" and i % 3 == 0:
                    continue  # BBB has no return every third day
                value = None if name == "CCC" and i == 5 else 0.001 * (i + 1) * (j + 1) / 7
                cur.execute(
                    f"insert into {SCHEMA}.returns values (%s, %s, %s)", (day, name, value)
                )
    db_conn.commit()
    yield f"{SCHEMA}.universe", f"{SCHEMA}.returns"
    with db_conn.cursor() as cur:
        cur.execute(f"drop schema if exists {SCHEMA} cascade")
    db_conn.commit()


def test_load_when_range_given_then_rows_sorted_with_typed_columns(db_conn, relations):
    universe, _ = relations
    held = RelationCache().load(db_conn, universe, DAYS[2], DAYS[5])

    assert list(held.frame.columns) == ["session_date", "symbol", "sector", "is_tradable", "price"]
    assert len(held.frame) == 4 * len(NAMES)
    assert held.frame["session_date"].dtype == "datetime64[ns]"
    assert held.frame["is_tradable"].dtype == bool
    assert held.frame["price"].tolist()[:3] == [12.5, 12.5, 12.5]
    assert held.frame["sector"].isna().sum() == 4  # CCC has no sector
    assert list(held.frame["symbol"][:3]) == NAMES
    assert held.rows(DAYS[3], DAYS[3])["symbol"].tolist() == NAMES
    assert held.rows(DAYS[7], DAYS[8]).empty


def test_rows_when_range_outside_cached_one_then_none(db_conn, relations):
    universe, _ = relations
    cache = RelationCache()
    cache.load(db_conn, universe, DAYS[2], DAYS[5], columns=["sector"])

    assert cache.rows(universe, DAYS[2], DAYS[5]) is not None
    assert cache.rows(universe, DAYS[1], DAYS[5]) is None
    assert cache.rows(universe, DAYS[2], DAYS[6]) is None
    assert cache.rows("other.relation", DAYS[2], DAYS[2]) is None


def test_load_when_loaded_before_then_union_of_ranges_and_columns(db_conn, relations):
    universe, _ = relations
    cache = RelationCache()
    cache.load(db_conn, universe, DAYS[2], DAYS[5], columns=["sector"])
    held = cache.load(db_conn, universe, DAYS[0], DAYS[3], columns=["is_tradable"])

    assert (held.start, held.end) == (DAYS[0], DAYS[5])
    assert {"sector", "is_tradable"} <= set(held.frame.columns)
    assert "price" not in held.frame.columns
    assert len(held.frame) == 6 * len(NAMES)
    assert cache.load(db_conn, universe, DAYS[1], DAYS[4], columns=["sector"]) is held


def test_load_when_column_missing_then_error_names_it(db_conn, relations):
    universe, _ = relations
    with pytest.raises(KeyError, match="no_such_column"):
        RelationCache().load(db_conn, universe, DAYS[0], DAYS[1], columns=["no_such_column"])


@pytest.mark.parametrize("day_index", [0, 4, 5, 11])
def test_portfolio_loaders_when_cache_given_then_same_frames_as_database(
    db_conn, relations, day_index
):
    universe, returns = relations
    day = DAYS[day_index]
    expected_universe = load_universe(db_conn, day, universe)
    expected_returns = load_returns(db_conn, day, NAMES, 4, returns)
    cache = RelationCache()
    cache.load(db_conn, universe, DAYS[0], DAYS[-1])
    cache.load(db_conn, returns, DAYS[0], DAYS[-1], columns=["total_return"])

    got_universe = load_universe(db_conn, day, universe, cache=cache)
    got_returns = load_returns(db_conn, day, NAMES, 4, returns, cache=cache)

    pd.testing.assert_frame_equal(got_universe, expected_universe)
    pd.testing.assert_frame_equal(got_returns, expected_returns)
    assert len(expected_returns) == min(day_index + 1, 4)


def test_load_returns_when_cache_starts_inside_lookback_then_database_answers(
    db_conn, relations
):
    _, returns = relations
    expected = load_returns(db_conn, DAYS[6], NAMES, 5, returns)
    cache = RelationCache()
    cache.load(db_conn, returns, DAYS[4], DAYS[-1])  # 3 sessions up to DAYS[6]: fewer than 5

    got = load_returns(db_conn, DAYS[6], NAMES, 5, returns, cache=cache)

    pd.testing.assert_frame_equal(got, expected)
    assert len(got) == 5


def test_load_when_range_spans_many_copies_then_same_frame_as_one_copy(
    db_conn, monkeypatch
):
    """Rows read a few months at a time, with gaps and columns null in whole stretches."""
    from quant.db import _cache

    days = [date(2022, 1, 3) + timedelta(days=3 * i) for i in range(150)]
    days = [d for d in days if not date(2022, 6, 1) <= d <= date(2022, 11, 30)]  # a long gap
    with db_conn.cursor() as cur:
        cur.execute(f"drop schema if exists {SCHEMA} cascade")
        cur.execute(f"create schema {SCHEMA}")
        cur.execute(
            f"create table {SCHEMA}.wide (session_date date, symbol text, n bigint, "
            "x double precision, flag boolean, label text)"
        )
        for i, day in enumerate(days):
            for name in NAMES:
                n = None if day.year == 2022 and day.month < 4 else i  # null for months
                flag = None if i % 50 == 0 else i % 2 == 0
                cur.execute(
                    f"insert into {SCHEMA}.wide values (%s, %s, %s, %s, %s, %s)",
                    (day, name, n, i / 7, flag, None if i % 3 else f"L{i}"),
                )
    db_conn.commit()
    relation = f"{SCHEMA}.wide"
    try:
        chunked = RelationCache().load(db_conn, relation, days[0], days[-1])
        monkeypatch.setattr(_cache, "_CHUNK", timedelta(days=10_000))
        whole = RelationCache().load(db_conn, relation, days[0], days[-1])
        empty = RelationCache().load(db_conn, relation, date(2022, 7, 1), date(2022, 8, 1))
    finally:
        with db_conn.cursor() as cur:
            cur.execute(f"drop schema if exists {SCHEMA} cascade")
        db_conn.commit()

    assert len(whole.frame) == len(days) * len(NAMES)
    pd.testing.assert_frame_equal(chunked.frame, whole.frame)
    assert (chunked.dates == whole.dates).all()
    assert empty.frame.empty
