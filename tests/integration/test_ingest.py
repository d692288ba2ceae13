"""Ingestion into the real PostgreSQL: idempotence, corrections, incremental vs full, both load paths."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quant.calendar import get_calendar
from quant.config import Settings
from quant.data import SyntheticProvider, encode_bars_binary, ingest_bars
from quant.exceptions import DataValidationError
from quant.testing import StaticProvider
from quant.testing.db import query, truncate_pipeline_tables

pytestmark = pytest.mark.integration

END = date(2024, 6, 28)
SYMBOLS = 8


def _bars(settings: Settings, with_stamp: bool = False) -> list[tuple]:
    stamp = ", ingested_at" if with_stamp else ""
    return query(
        settings,
        "select symbol, date, provider, open, high, low, close, volume"
        + stamp
        + " from raw.bars order by symbol, date, provider",
    )


def _window(sessions: int) -> tuple[date, list[date]]:
    cal = get_calendar("XNYS")
    start = cal.shift(END, -(sessions - 1))
    return start, cal.sessions(start, END)


def test_ingest_when_same_date_run_twice_then_no_row_changes(clean_db: Settings) -> None:
    start, window = _window(30)
    first = ingest_bars(
        END, provider=SyntheticProvider(symbols=SYMBOLS), start=start, settings=clean_db
    )
    rows = _bars(clean_db, with_stamp=True)
    assert first.rows_inserted == len(rows) > 0
    assert first.sessions_fetched == len(window)

    second = ingest_bars(
        END, provider=SyntheticProvider(symbols=SYMBOLS), start=start, settings=clean_db
    )
    refreshed = ingest_bars(
        END,
        provider=SyntheticProvider(symbols=SYMBOLS),
        start=start,
        settings=clean_db,
        refresh=True,
    )

    assert second.sessions_fetched == 0 and second.rows_changed == 0
    assert refreshed.rows_received == len(rows) and refreshed.rows_changed == 0
    assert _bars(clean_db, with_stamp=True) == rows  # same values, same ingestion stamps
    assert query(clean_db, "select count(*) from raw.bar_revisions") == [(0,)]


def test_ingest_when_bar_corrected_then_row_updated_and_old_version_kept(
    clean_db: Settings,
) -> None:
    start, window = _window(10)
    bars = SyntheticProvider(symbols=SYMBOLS).bars(start, END)
    ingest_bars(END, provider=StaticProvider("vendor", bars), start=start, settings=clean_db)
    before = {(r[0], r[1]): r for r in _bars(clean_db)}

    corrected = bars.copy()
    target = (corrected["symbol"] == "SYN002") & (corrected["date"] == pd.Timestamp(window[3]))
    corrected.loc[target, "close"] = corrected.loc[target, "close"] * 1.05
    corrected.loc[target, "high"] = corrected.loc[target, ["high", "close"]].max(axis=1)
    result = ingest_bars(
        END,
        provider=StaticProvider("vendor", corrected),
        start=start,
        settings=clean_db,
        refresh=True,
    )

    assert (result.rows_updated, result.rows_inserted) == (1, 0)
    after = {(r[0], r[1]): r for r in _bars(clean_db)}
    key = ("SYN002", window[3])
    assert after[key][6] == pytest.approx(before[key][6] * 1.05)
    assert {k: v for k, v in after.items() if k != key} == {
        k: v for k, v in before.items() if k != key
    }
    revisions = query(
        clean_db,
        "select symbol, date, provider, open, high, low, close, volume from raw.bar_revisions",
    )
    assert revisions == [before[key]]


def test_ingest_when_incremental_day_by_day_then_identical_to_one_full_range(
    clean_db: Settings,
) -> None:
    start, window = _window(25)
    # incremental: a first run with 5 sessions, then one run per session after it
    ingest_bars(
        window[4], provider=SyntheticProvider(symbols=SYMBOLS), start=start, settings=clean_db
    )
    for day in window[5:]:
        result = ingest_bars(
            day, provider=SyntheticProvider(symbols=SYMBOLS), start=start, settings=clean_db
        )
        assert result.sessions_fetched == 1
    incremental = _bars(clean_db)
    symbols_inc = query(
        clean_db,
        "select symbol, provider, sector, listed_at, delisted_at from raw.symbols order by 1",
    )
    actions_inc = query(clean_db, "select * from raw.corporate_actions order by 1, 2, 3")

    truncate_pipeline_tables(clean_db)
    ingest_bars(END, provider=SyntheticProvider(symbols=SYMBOLS), start=start, settings=clean_db)

    assert _bars(clean_db) == incremental
    assert symbols_inc == query(
        clean_db,
        "select symbol, provider, sector, listed_at, delisted_at from raw.symbols order by 1",
    )
    assert [r[:6] for r in actions_inc] == [
        r[:6] for r in query(clean_db, "select * from raw.corporate_actions order by 1, 2, 3")
    ]


def test_ingest_when_backfill_start_earlier_then_only_missing_sessions_fetched(
    clean_db: Settings,
) -> None:
    start, window = _window(20)
    provider = SyntheticProvider(symbols=SYMBOLS)
    ingest_bars(END, provider=provider, start=window[10], settings=clean_db)
    result = ingest_bars(END, provider=provider, start=start, settings=clean_db)
    assert result.sessions_fetched == 10
    assert result.rows_updated == 0
    dates = [r[0] for r in query(clean_db, "select distinct date from raw.bars order by 1")]
    assert dates == window


def test_ingest_when_fast_path_and_upsert_path_then_identical_rows(clean_db: Settings) -> None:
    start, window = _window(15)
    bars = SyntheticProvider(symbols=SYMBOLS).bars(start, END)

    fast = ingest_bars(END, provider=StaticProvider("vendor", bars), start=start, settings=clean_db)
    assert fast.rows_inserted == len(bars)
    via_copy = _bars(clean_db)

    truncate_pipeline_tables(clean_db)
    # one symbol per session first: every session is then present, so the rest must upsert
    seed = bars.loc[bars["symbol"] == "SYN001"]
    ingest_bars(END, provider=StaticProvider("vendor", seed), start=start, settings=clean_db)
    upsert = ingest_bars(
        END, provider=StaticProvider("vendor", bars), start=start, settings=clean_db, refresh=True
    )
    assert upsert.rows_inserted == len(bars) - len(seed)
    assert upsert.rows_updated == 0

    assert _bars(clean_db) == via_copy
    assert len(via_copy) == len(bars)


def test_ingest_when_symbols_vary_in_length_and_script_then_copied_exactly(
    clean_db: Settings,
) -> None:
    start, window = _window(3)
    names = ["A", "BRK.B", "LONGTICKERNAME", "ÄÖÜ", "X"]
    rng = np.random.default_rng(1)
    rows = []
    for day in window:
        for name in names:
            low = float(rng.uniform(1, 500))
            rows.append(
                (
                    pd.Timestamp(day),
                    name,
                    low * 1.01,
                    low * 1.02,
                    low,
                    low * 1.015,
                    int(rng.integers(0, 2**40)),
                )
            )
    bars = pd.DataFrame(rows, columns=["date", "symbol", "open", "high", "low", "close", "volume"])
    ingest_bars(END, provider=StaticProvider("prov-ünïcode", bars), start=start, settings=clean_db)

    got = _bars(clean_db)
    want = sorted(
        (r.symbol, r.date.date(), "prov-ünïcode", r.open, r.high, r.low, r.close, r.volume)
        for r in bars.itertuples()
    )
    assert got == want  # exact floats and 64-bit volumes


def test_encode_bars_binary_when_empty_then_header_and_trailer_only() -> None:
    empty = pd.DataFrame(
        columns=["date", "symbol", "open", "high", "low", "close", "volume", "provider"]
    )
    assert encode_bars_binary(empty) == b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + b"\xff\xff"


def test_ingest_when_provider_returns_bad_price_then_nothing_written(clean_db: Settings) -> None:
    start, window = _window(5)
    bars = SyntheticProvider(symbols=SYMBOLS).bars(start, END)
    bars.loc[7, "close"] = np.nan
    with pytest.raises(DataValidationError, match="'close'"):
        ingest_bars(END, provider=StaticProvider("vendor", bars), start=start, settings=clean_db)
    assert _bars(clean_db) == []
    assert query(clean_db, "select count(*) from ops.ingestions") == [(0,)]


def test_ingest_when_run_then_ingestion_recorded_with_sources(clean_db: Settings) -> None:
    start, window = _window(5)
    result = ingest_bars(
        END, provider=SyntheticProvider(symbols=SYMBOLS), start=start, settings=clean_db
    )
    record = query(
        clean_db,
        "select provider, rows_received, rows_inserted, rows_updated, sessions_fetched from ops.ingestions",
    )
    assert record == [("synthetic", result.rows_received, result.rows_inserted, 0, len(window))]
    sources = query(
        clean_db,
        "select provider, count(*), sum(rows_received) from ops.ingestion_sources group by provider",
    )
    assert sources == [("synthetic", SYMBOLS, result.rows_received)]
    assert result.to_dict()["sources"] == {"synthetic": SYMBOLS}


_symbol_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40
)


@given(
    rows=st.lists(
        st.tuples(
            _symbol_text,
            st.dates(min_value=date(1990, 1, 1), max_value=date(2099, 12, 31)),
            st.floats(min_value=1e-6, max_value=1e9, allow_nan=False),
            st.floats(min_value=1e-6, max_value=1e9, allow_nan=False),
            st.integers(min_value=0, max_value=2**62),
        ),
        min_size=1,
        max_size=60,
        unique_by=lambda r: (r[0], r[1]),
    ),
    provider=_symbol_text,
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_encode_bars_binary_when_any_rows_then_postgres_reads_back_exactly(
    db_conn, rows: list[tuple], provider: str
) -> None:
    import io

    frame = pd.DataFrame(
        {
            "date": pd.to_datetime([r[1] for r in rows]),
            "symbol": [r[0] for r in rows],
            "open": [r[2] for r in rows],
            "high": [max(r[2], r[3]) for r in rows],
            "low": [min(r[2], r[3]) for r in rows],
            "close": [r[3] for r in rows],
            "volume": np.array([r[4] for r in rows], dtype=np.int64),
            "provider": provider,
        }
    )
    with db_conn.cursor() as cur:
        cur.execute(
            "create temporary table if not exists copy_check (like raw.bars including defaults)"
        )
        cur.execute("truncate copy_check")
        cur.copy_expert(
            "copy copy_check (symbol, date, provider, open, high, low, close, volume) "
            "from stdin with (format binary)",
            io.BytesIO(encode_bars_binary(frame)),
        )
        cur.execute("select symbol, date, provider, open, high, low, close, volume from copy_check")
        got = sorted(cur.fetchall())
    want = sorted(
        (r.symbol, r.date.date(), provider, r.open, r.high, r.low, r.close, int(r.volume))
        for r in frame.itertuples()
    )
    assert got == want
