"""Writes of ingested data into the ``raw`` schema: bars, symbols, corporate actions.

Nothing written here is ever deleted:

* Bars of sessions a provider has no row for yet cannot conflict with
  anything, so they take the fast path: one binary ``COPY`` straight into
  ``raw.bars``.
* Bars of sessions already present (a refresh, or a backfill overlapping
  what is there) take the upsert path: binary ``COPY`` into a temporary
  table, then ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` the values
  differ. A rerun therefore changes nothing, and a correction replaces the
  current row while the trigger on ``raw.bars`` keeps the earlier version
  in ``raw.bar_revisions``.

Which sessions are present is read again under a per-provider advisory lock
(:func:`lock_providers`) inside the writing transaction, so two concurrent
ingestions cannot both take the fast path for the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from quant.data._pgcopy import copy_bars, copy_frame

__all__ = [
    "lock_providers",
    "present_dates",
    "record_sources",
    "upsert_actions",
    "upsert_symbols",
    "write_bars",
]

_LOCK_CLASS = 0x71756E74  # "qunt": advisory-lock namespace of raw.bars ingestion


def lock_providers(cur: Any, providers: Iterable[str]) -> None:
    """Take the transaction's advisory lock on each provider's bars, in name order."""
    for name in sorted(providers):
        cur.execute("select pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_CLASS, name))


def write_bars(
    cur: Any, bars: pd.DataFrame, providers: list[str], sessions: list[date]
) -> tuple[int, int]:
    """Write ``bars`` of ``sessions`` into raw.bars; returns (rows inserted, rows updated).

    Rows of a (provider, session) with no bar yet take the fast path, the
    others the upsert path. Call with the providers locked
    (:func:`lock_providers`) in the same transaction.
    """
    inserted = updated = 0
    overlap = _overlap(bars, present_dates(cur, providers, sessions))
    fresh = bars.loc[~overlap]
    if len(fresh):
        copy_bars(cur, "raw.bars", fresh)
        inserted = len(fresh)
    if overlap.any():
        new, updated = _upsert_bars(cur, bars.loc[overlap])
        inserted += new
    return inserted, updated


def _overlap(bars: pd.DataFrame, present: dict[str, set[date]]) -> np.ndarray:
    """Mask of the rows whose (provider, date) already has rows in raw.bars."""
    days = bars["date"].to_numpy().astype("datetime64[D]")
    provider = bars["provider"].to_numpy()
    overlap = np.zeros(len(bars), dtype=bool)
    for name, dates in present.items():
        if dates:
            taken = np.array(sorted(dates), dtype="datetime64[D]")
            overlap |= (provider == name) & np.isin(days, taken)
    return overlap


def present_dates(cur: Any, providers: list[str], days: list[date]) -> dict[str, set[date]]:
    """The sessions of ``days`` on which each provider already has at least one bar.

    One index probe per (provider, session) on ``bars_date_idx``, instead of
    reading every row of the window.
    """
    cur.execute(
        """
        select p.provider, d.day
        from unnest(%s::text[]) as p (provider)
        cross join unnest(%s::date[]) as d (day)
        where exists (select 1 from raw.bars b where b.date = d.day and b.provider = p.provider)
        """,
        (providers, days),
    )
    out: dict[str, set[date]] = {name: set() for name in providers}
    for name, day in cur.fetchall():
        out[name].add(day)
    return out


def _upsert_bars(cur: Any, bars: pd.DataFrame) -> tuple[int, int]:
    """Merge ``bars`` into raw.bars; returns (rows inserted, rows updated)."""
    cur.execute("create temporary table tmp_bars (like raw.bars including defaults) on commit drop")
    copy_bars(cur, "tmp_bars", bars)
    cur.execute(
        """
        with merged as (
            insert into raw.bars as b (symbol, date, provider, open, high, low, close, volume)
            select symbol, date, provider, open, high, low, close, volume from tmp_bars
            on conflict (symbol, date, provider) do update
                set open = excluded.open, high = excluded.high, low = excluded.low,
                    close = excluded.close, volume = excluded.volume, ingested_at = now()
                where (b.open, b.high, b.low, b.close, b.volume)
                      is distinct from (excluded.open, excluded.high, excluded.low,
                                        excluded.close, excluded.volume)
            returning (xmax = 0) as inserted
        )
        select count(*) filter (where inserted), count(*) filter (where not inserted) from merged
        """
    )
    inserted, updated = cur.fetchone()
    cur.execute("drop table tmp_bars")
    return int(inserted), int(updated)


def upsert_symbols(cur: Any, symbols: pd.DataFrame) -> int:
    if symbols.empty:
        return 0
    cur.execute(
        "create temporary table tmp_symbols (like raw.symbols including defaults) on commit drop"
    )
    copy_frame(
        cur, "tmp_symbols", symbols, ["symbol", "provider", "sector", "listed_at", "delisted_at"]
    )
    # A delisting, once known, stays known: re-ingesting an earlier date does not erase it.
    cur.execute(
        """
        insert into raw.symbols as s (symbol, provider, sector, listed_at, delisted_at)
        select symbol, provider, sector, listed_at, delisted_at from tmp_symbols
        on conflict (symbol, provider) do update
            set sector = excluded.sector, listed_at = excluded.listed_at,
                delisted_at = coalesce(excluded.delisted_at, s.delisted_at), ingested_at = now()
            where (s.sector, s.listed_at, coalesce(excluded.delisted_at, s.delisted_at))
                  is distinct from (excluded.sector, excluded.listed_at, s.delisted_at)
        """
    )
    return cur.rowcount


def upsert_actions(cur: Any, actions: pd.DataFrame) -> int:
    if actions.empty:
        return 0
    cur.execute(
        "create temporary table tmp_actions (like raw.corporate_actions including defaults) "
        "on commit drop"
    )
    cols = ["symbol", "ex_date", "action_type", "provider", "split_ratio", "dividend_usd"]
    copy_frame(cur, "tmp_actions", actions, cols)
    cur.execute(
        """
        insert into raw.corporate_actions as a
            (symbol, ex_date, action_type, provider, split_ratio, dividend_usd)
        select symbol, ex_date, action_type, provider, split_ratio, dividend_usd from tmp_actions
        on conflict (symbol, ex_date, action_type, provider) do update
            set split_ratio = excluded.split_ratio, dividend_usd = excluded.dividend_usd,
                ingested_at = now()
            where (a.split_ratio, a.dividend_usd)
                  is distinct from (excluded.split_ratio, excluded.dividend_usd)
        """
    )
    return cur.rowcount


def record_sources(
    cur: Any, ingestion_id: int, bars: pd.DataFrame, skipped: dict[str, list[str]]
) -> None:
    if bars.empty:
        return
    summary = bars.groupby(["symbol", "provider"], sort=True)["date"].agg(["size", "min", "max"])
    rows = [
        (ingestion_id, symbol, provider, int(size), lo.date(), hi.date(), skipped.get(symbol, []))
        for (symbol, provider), (size, lo, hi) in summary.iterrows()
    ]
    from psycopg2.extras import execute_values

    execute_values(
        cur,
        """
        insert into ops.ingestion_sources
            (ingestion_id, symbol, provider, rows_received, first_date, last_date, skipped_providers)
        values %s
        """,
        rows,
        page_size=1000,
    )
