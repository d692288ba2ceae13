"""Prices and volumes the execution stages read from ``raw.bars`` (point in time).

Bars are unadjusted (what a broker trades at). When several providers have a
bar for the same symbol and date, the first of the configured provider chain
wins, then the alphabetically first provider.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

__all__ = [
    "SessionBar",
    "average_daily_volume",
    "cache_market_inputs",
    "session_bars",
    "universe_sectors",
]


@dataclass(frozen=True, slots=True)
class SessionBar:
    """One symbol's unadjusted bar of a session (USD, shares)."""

    open: float
    close: float
    volume: float


def session_bars(
    conn: Any,
    session: date,
    providers: Sequence[str],
    symbols: Sequence[str] | None = None,
    *,
    cache: Any = None,
) -> dict[str, SessionBar]:
    """The bars of ``session`` per symbol (all symbols, or those asked for); from ``cache``
    (a :class:`quant.db.RelationCache` filled by :func:`cache_market_inputs`) when it has them."""
    cached = _recall(cache, ("session_bars", tuple(providers)), session)
    if cached is not None:
        if symbols is None:
            return dict(cached)
        wanted = {s.upper() for s in symbols}
        return {s: b for s, b in cached.items() if s in wanted}
    sql = (
        "select distinct on (symbol) symbol, open, close, volume from raw.bars "
        "where date = %s {extra} "
        "order by symbol, array_position(%s::text[], provider) nulls last, provider"
    )
    params: list[Any] = [session]
    extra = ""
    if symbols is not None:
        extra = "and symbol = any(%s)"
        params.append([s.upper() for s in symbols])
    params.append(list(providers))
    with conn.cursor() as cur:
        cur.execute(sql.format(extra=extra), params)
        rows = cur.fetchall()
    return {r[0]: SessionBar(float(r[1]), float(r[2]), float(r[3])) for r in rows}


def average_daily_volume(
    conn: Any, session: date, providers: Sequence[str], sessions: int = 20, *, cache: Any = None
) -> dict[str, float]:
    """Mean daily volume (shares) per symbol over the ``sessions`` latest dates up to and
    including ``session`` that have bars; from ``cache`` as :func:`session_bars`."""
    cached = _recall(cache, ("average_daily_volume", tuple(providers), sessions), session)
    if cached is not None:
        return dict(cached)
    with conn.cursor() as cur:
        cur.execute(
            """
            with dates as (
                select distinct date from raw.bars where date <= %s order by date desc limit %s
            ), best as (
                select distinct on (b.symbol, b.date) b.symbol, b.volume
                from raw.bars b join dates d on d.date = b.date
                order by b.symbol, b.date, array_position(%s::text[], b.provider) nulls last,
                         b.provider
            )
            select symbol, sum(volume)::double precision / count(*) from best group by symbol
            """,
            (session, sessions, list(providers)),
        )
        return {r[0]: float(r[1]) for r in cur.fetchall()}


def _recall(cache: Any, key: tuple, session: date) -> dict | None:
    """``session``'s entry of a table :func:`cache_market_inputs` put in ``cache``."""
    table = None if cache is None else cache.recall(key)
    return None if table is None else table.get(session)


def cache_market_inputs(
    conn: Any, cache: Any, start: date, end: date, providers: Sequence[str], adv_sessions: int
) -> None:
    """Put in ``cache`` (a :class:`quant.db.RelationCache`) every session's bars and ADV
    from ``start`` to ``end``, as :func:`session_bars` and :func:`average_daily_volume`
    would read them; given the cache (``cache=``), they answer from it.

    For a run over many sessions (a backtest): ``raw.bars`` must not change meanwhile.
    The ADV is summed in integers (volumes are whole shares) and divided once, in
    :func:`average_daily_volume`'s SQL as here: both give the same double to the last bit.
    """
    import numpy as np
    import pandas as pd

    providers = list(providers)
    with conn.cursor() as cur:
        cur.execute(
            "select min(date) from (select distinct date from raw.bars where date <= %s "
            "order by date desc limit %s) recent",
            (start, adv_sessions),
        )
        first = cur.fetchone()[0] or start
        cur.execute(
            "select distinct on (symbol, date) date, symbol, open, close, volume from raw.bars "
            "where date between %s and %s "
            "order by symbol, date, array_position(%s::text[], provider) nulls last, provider",
            (first, end, providers),
        )
        rows = cur.fetchall()
    bars: dict[date, dict[str, SessionBar]] = {}
    for day, symbol, open_, close, volume in rows:
        bars.setdefault(day, {})[symbol] = SessionBar(float(open_), float(close), float(volume))
    frame = pd.DataFrame(
        [(r[0], r[1], int(r[4])) for r in rows], columns=["date", "symbol", "volume"]
    )
    adv: dict[date, dict[str, float]] = {}
    if not frame.empty:
        wide = frame.pivot(index="date", columns="symbol", values="volume").sort_index()
        present = wide.notna().to_numpy()
        volume = wide.fillna(0).to_numpy(dtype=np.int64)
        totals = np.cumsum(np.vstack([np.zeros((1, volume.shape[1]), np.int64), volume]), axis=0)
        counts = np.cumsum(np.vstack([np.zeros((1, present.shape[1]), np.int64), present]), axis=0)
        names = list(wide.columns)
        for i, day in enumerate(wide.index):
            if day < start:
                continue
            lo = max(0, i + 1 - adv_sessions)
            total = totals[i + 1] - totals[lo]
            count = counts[i + 1] - counts[lo]
            adv[day] = {
                names[j]: int(total[j]) / int(count[j]) for j in np.flatnonzero(count)
            }
    cache.remember(("session_bars", tuple(providers)), {d: b for d, b in bars.items() if d >= start})
    cache.remember(("average_daily_volume", tuple(providers), adv_sessions), adv)


def universe_sectors(conn: Any, providers: Sequence[str]) -> dict[str, str]:
    """Symbol -> sector from ``raw.symbols`` (first provider of the chain wins)."""
    with conn.cursor() as cur:
        cur.execute(
            "select distinct on (symbol) symbol, sector from raw.symbols "
            "order by symbol, array_position(%s::text[], provider) nulls last, provider",
            (list(providers),),
        )
        return {r[0]: r[1] for r in cur.fetchall()}
