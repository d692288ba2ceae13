"""The data-quality screen of a range agrees with the full gate, session by session.

A synthetic market is ingested and its marts built; then a fault of every kind the
blocking checks look for is planted on its own session (a duplicate bar, a jump, high
below low, a negative volume and price, a NaN close, missing bars, missing and broken
features, an empty universe, a stale feed), one name gets a constant volume (the
``look_unadjusted`` warning) and another a long gap in its history (where the range's
bar checks could differ from the session's own). For every session the full gate
(:func:`quant.quality.run_data_quality`) and the screen must agree: every blocking
check the gate fails is flagged, nothing else is flagged but the history gap, and the
screen's warnings are the gate's.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from quant.config import Settings
from quant.testing.db import execute, query
from quant.testing.marts import dbt_as_of, recent_synthetic_sessions

pytestmark = pytest.mark.integration

HELD = "positions.held_symbol_has_bar"  # the books' check: not screened


def _names(settings: Settings, day: date, n: int) -> list[str]:
    return [r[0] for r in query(
        settings, "select symbol from raw.bars where date = %s order by symbol limit %s", day, n)]


@pytest.fixture(scope="module")
def market(pg_settings: Settings) -> dict[str, Any]:
    from quant.db import connect

    settings = pg_settings
    days = recent_synthetic_sessions(settings, 11)
    names = _names(settings, days[0], 12)
    flat, gap = names[0], names[1]
    execute(settings, "update raw.bars set volume = 1000000 where symbol = %s", flat)
    # a long gap in the gap name's history, up to the first session: late in the range its
    # volatility window reaches back past the session query's own window (110 calendar
    # days) into bars the range's query reads
    execute(settings, "delete from raw.bars where symbol = %s and date between %s and %s",
            gap, days[0] - timedelta(days=105), days[0])
    dbt_as_of(settings, days[-1])
    bad = names[2:]
    faults = {
        1: ["insert into raw.bars (symbol, date, provider, open, high, low, close, volume) "
            "select symbol, date, 'second_feed', open, high, low, close, volume "
            "from raw.bars where symbol = %(a)s and date = %(d)s"],
        2: ["update raw.bars set close = close * 10, high = high * 10 "
            "where symbol = %(a)s and date = %(d)s",
            "update raw.bars set high = low * 0.5 where symbol = %(b)s and date = %(d)s"],
        3: ["update raw.bars set volume = -5 where symbol = %(a)s and date = %(d)s",
            "update raw.bars set open = -1 where symbol = %(b)s and date = %(d)s",
            "update raw.bars set close = 'NaN' where symbol = %(c)s and date = %(d)s"],
        4: ["delete from raw.bars where date = %(d)s and symbol in (select symbol from "
            "raw.bars where date = %(d)s order by md5(symbol) limit "
            "(select count(*) * 3 / 10 from raw.bars where date = %(d)s))"],
        5: ["update marts.features set momentum_21d = 0.5 where session_date = %(d)s",
            "update marts.features set rsi_14d = 120 where symbol = %(a)s and session_date = %(d)s",
            "update marts.features set momentum_63d_rank = 1.5 "
            "where symbol = %(b)s and session_date = %(d)s",
            "update marts.features set reversal_1d = null "
            "where symbol = %(c)s and session_date = %(d)s",
            "update marts.features set volatility_20d = 'Infinity' "
            "where symbol = %(e)s and session_date = %(d)s"],
        6: ["delete from marts.features where session_date = %(d)s and symbol in (select "
            "symbol from marts.features where session_date = %(d)s order by md5(symbol) "
            "limit (select count(*) / 2 from marts.features where session_date = %(d)s))"],
        7: ["delete from marts.universe where session_date = %(d)s"],
        8: ["delete from raw.bars where date = %(d)s"],
    }
    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            for i, statements in faults.items():
                for sql in statements:
                    cur.execute(sql, {"d": days[i], "a": bad[0], "b": bad[1], "c": bad[2],
                                      "e": bad[3]})
    finally:
        conn.close()
    return {"settings": settings, "days": days, "flat": flat, "gap": gap}


@pytest.fixture(scope="module")
def verdicts(market: dict[str, Any]) -> dict[date, tuple[set[str], set[str]]]:
    """The full gate's blocking failures and warnings of each session."""
    from quant.quality import DataQualityError, run_data_quality

    found = {}
    for day in market["days"]:
        try:
            report = run_data_quality(day, run_id=f"screen_test_{day}",
                                      settings=market["settings"], data_docs=False)
        except DataQualityError as exc:
            report = exc.report
        found[day] = ({r.name for r in report.blocking_failures},
                      {r.name for r in report.warnings} - {HELD})
    return found


@pytest.fixture(scope="module")
def screen(market: dict[str, Any]) -> Any:
    from quant.quality import screen_sessions

    return screen_sessions(market["days"], market["settings"])


def test_screen_when_faults_planted_then_flags_exactly_the_sessions_the_gate_fails(
    market: dict[str, Any], verdicts: dict, screen: Any,
) -> None:
    days = market["days"]
    expected = {
        1: {"raw_bars.one_row_per_symbol_and_date"},
        2: {"raw_bars.no_unexplained_jump", "raw_bars.ohlc_consistent"},
        3: {"raw_bars.volume_non_negative", "raw_bars.prices_positive", "raw_bars.prices_finite"},
        4: {"raw_bars.universe_coverage"},
        5: {"features.momentum_21d.varies", "features.rsi_14d.in_range",
            "features.momentum_63d_rank.in_unit_interval", "features.reversal_1d.not_null",
            "features.volatility_20d.finite"},
        6: {"universe.features_present"},
        7: {"universe.not_empty"},
        8: {"raw_bars.feed_not_stale"},
    }
    for i, checks in expected.items():  # the planted faults are real: the gate fails them
        assert checks <= verdicts[days[i]][0], (days[i], verdicts[days[i]][0])
    assert not verdicts[days[0]][0] and not verdicts[days[9]][0]
    for day in days:
        failed = verdicts[day][0]
        flagged = set(screen.flagged.get(day, ()))
        gap = {f for f in flagged if "history gap" in f}
        if failed:
            assert screen.needs_gate(day), day
        if not gap:  # the range's rows are the session's: the same checks fail
            assert flagged == failed, (day, flagged, failed)
        else:  # the session's own query decides: it runs the full gate
            assert screen.needs_gate(day) and flagged - gap <= failed, (day, flagged, failed)


def test_screen_when_history_gap_then_that_session_runs_the_full_gate(
    market: dict[str, Any], screen: Any,
) -> None:
    day = market["days"][9]
    assert "raw_bars_session (history gap)" in screen.flagged[day]
    assert screen.needs_gate(day)
    assert not screen.needs_gate(market["days"][0])


def test_screen_when_names_warn_then_same_warnings_and_rows_as_gate(
    market: dict[str, Any], verdicts: dict, screen: Any,
) -> None:
    from quant.quality import DataQualityError, run_data_quality

    for day in market["days"]:
        if not screen.needs_gate(day):
            assert {w.name for w in screen.warnings.get(day, ())} == verdicts[day][1], day
    first = market["days"][0]
    warned = {w.name: w for w in screen.warnings[first]}
    assert "raw_bars.look_unadjusted" in warned
    try:
        report = run_data_quality(first, run_id="screen_rows", settings=market["settings"],
                                  data_docs=False)
    except DataQualityError as exc:
        report = exc.report
    gate = {r.name: r for r in report.warnings}["raw_bars.look_unadjusted"]
    assert warned["raw_bars.look_unadjusted"].unexpected == gate.unexpected
    assert market["flat"] in {row["symbol"] for row in gate.unexpected}


def test_range_forms_when_no_history_gap_then_same_rows_as_session_queries(
    market: dict[str, Any], screen: Any,
) -> None:
    from quant.db import connect
    from quant.quality._checks import range_forms, session_assets

    settings, days = market["settings"], market["days"]
    for name, form in range_forms(settings.quality).items():
        sql, _guard, values = form.bind(days, "dq_session")
        conn = connect(settings)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(f"select * from ({sql}) as r", values)
                ranged = cur.fetchall()
        finally:
            conn.close()
        for day in (days[0], days[2], days[5]):
            sql = session_assets(f"date '{day}'", settings.quality)[name].sql
            own = query(settings, f"select * from ({sql}) as a")
            mine = [row[1:] for row in ranged if row[0] == day]
            if name == "raw_bars_history":  # the distinct count is computed for offenders only
                own = [(*r[:3], r[3] if r[5] else None, *r[4:]) for r in own]
            if screen.needs_gate(day):  # the gap name's rows may differ there
                own = [r for r in own if r[0] != market["gap"]]
                mine = [r for r in mine if r[0] != market["gap"]]
            assert sorted(mine, key=repr) == sorted(own, key=repr), (name, day)
            assert len(own) >= 20, (name, day)
