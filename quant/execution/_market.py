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

__all__ = ["SessionBar", "average_daily_volume", "session_bars", "universe_sectors"]


@dataclass(frozen=True, slots=True)
class SessionBar:
    """One symbol's unadjusted bar of a session (USD, shares)."""

    open: float
    close: float
    volume: float


def session_bars(
    conn: Any, session: date, providers: Sequence[str], symbols: Sequence[str] | None = None
) -> dict[str, SessionBar]:
    """The bars of ``session`` per symbol (all symbols, or those asked for)."""
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
    conn: Any, session: date, providers: Sequence[str], sessions: int = 20
) -> dict[str, float]:
    """Mean daily volume (shares) per symbol over the ``sessions`` latest dates up to and
    including ``session`` that have bars."""
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
            select symbol, avg(volume)::double precision from best group by symbol
            """,
            (session, sessions, list(providers)),
        )
        return {r[0]: float(r[1]) for r in cur.fetchall()}


def universe_sectors(conn: Any, providers: Sequence[str]) -> dict[str, str]:
    """Symbol -> sector from ``raw.symbols`` (first provider of the chain wins)."""
    with conn.cursor() as cur:
        cur.execute(
            "select distinct on (symbol) symbol, sector from raw.symbols "
            "order by symbol, array_position(%s::text[], provider) nulls last, provider",
            (list(providers),),
        )
        return {r[0]: r[1] for r in cur.fetchall()}
