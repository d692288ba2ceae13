"""Ingestion of daily bars, symbols and corporate actions into the ``raw`` schema.

Idempotent for a logical date: rows are bulk-loaded into a temporary table
with COPY and merged with ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` the
values differ, so a rerun changes nothing, and a correction replaces the
current row while the trigger on ``raw.bars`` keeps the earlier version in
``raw.bar_revisions``. Incremental by default: only sessions missing in the
trailing window are fetched.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from quant.calendar import get_calendar
from quant.config import Settings, get_settings
from quant.db import connect

if TYPE_CHECKING:
    import pandas as pd

    from quant.data._base import MarketDataProvider

__all__ = ["IngestResult", "ingest_bars", "provider_from_settings"]


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one ingestion call did."""

    provider: str
    logical_date: date
    start_date: date
    end_date: date
    sessions_fetched: int
    rows_received: int
    rows_changed: int
    symbols_changed: int
    actions_changed: int

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("logical_date", "start_date", "end_date"):
            out[key] = out[key].isoformat()
        return out


def provider_from_settings(settings: Settings) -> MarketDataProvider:
    """The market-data provider the settings name."""
    from quant.data import get_provider

    if settings.provider == "synthetic":
        return get_provider(
            "synthetic",
            symbols=settings.synthetic.symbols,
            seed=settings.synthetic.seed,
            signal_strength=settings.synthetic.signal_strength,
            exchange=settings.exchange,
        )
    return get_provider(settings.provider)


def _copy_frame(cur: Any, table: str, frame: pd.DataFrame, columns: list[str]) -> None:
    buf = io.StringIO()
    frame[columns].to_csv(buf, index=False, header=False, date_format="%Y-%m-%d")
    buf.seek(0)
    cur.copy_expert(f"copy {table} ({', '.join(columns)}) from stdin with (format csv)", buf)


_BAR_COLS = ["symbol", "date", "open", "high", "low", "close", "volume"]


def _upsert_bars(cur: Any, bars: pd.DataFrame, provider: str) -> int:
    cur.execute(
        "create temporary table tmp_bars (like raw.bars including defaults) on commit drop"
    )
    frame = bars.assign(provider=provider)
    _copy_frame(cur, "tmp_bars", frame, [*_BAR_COLS, "provider"])
    cur.execute(
        """
        insert into raw.bars as b (symbol, date, provider, open, high, low, close, volume)
        select symbol, date, provider, open, high, low, close, volume from tmp_bars
        on conflict (symbol, date, provider) do update
            set open = excluded.open, high = excluded.high, low = excluded.low,
                close = excluded.close, volume = excluded.volume, ingested_at = now()
            where (b.open, b.high, b.low, b.close, b.volume)
                  is distinct from (excluded.open, excluded.high, excluded.low,
                                    excluded.close, excluded.volume)
        """
    )
    return cur.rowcount


def _upsert_symbols(cur: Any, symbols: pd.DataFrame, provider: str) -> int:
    if symbols.empty:
        return 0
    cur.execute(
        "create temporary table tmp_symbols (like raw.symbols including defaults) on commit drop"
    )
    frame = symbols.assign(provider=provider)
    _copy_frame(cur, "tmp_symbols", frame, ["symbol", "provider", "sector", "listed_at", "delisted_at"])
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


def _upsert_actions(cur: Any, actions: pd.DataFrame, provider: str) -> int:
    if actions.empty:
        return 0
    cur.execute(
        "create temporary table tmp_actions (like raw.corporate_actions including defaults) "
        "on commit drop"
    )
    frame = actions.assign(provider=provider)
    cols = ["symbol", "ex_date", "action_type", "provider", "split_ratio", "dividend_usd"]
    _copy_frame(cur, "tmp_actions", frame, cols)
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


def ingest_bars(
    logical_date: date,
    *,
    provider: MarketDataProvider | None = None,
    start: date | None = None,
    settings: Settings | None = None,
) -> IngestResult:
    """Ingest what is missing of the trailing window ending at ``logical_date``.

    Parameters
    ----------
    logical_date : date
        The session the run is for; nothing after its close is read.
    provider : MarketDataProvider, optional
        Defaults to the provider named by the settings.
    start : date, optional
        First session to cover (a backfill range); defaults to
        ``history_sessions`` sessions before ``logical_date``.
    settings : Settings, optional
    """
    settings = settings or get_settings()
    provider = provider or provider_from_settings(settings)
    cal = get_calendar(settings.exchange)
    session = cal.require_session(logical_date)
    if start is None:
        first = cal.first_session
        try:
            start = cal.shift(session, -(settings.history_sessions - 1))
        except Exception:
            start = first
    window = cal.sessions(start, session)
    started_at = datetime.now(timezone.utc)

    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "select distinct date from raw.bars where provider = %s and date between %s and %s",
                (provider.name, window[0], session),
            )
            present = {row[0] for row in cur.fetchall()}
        missing = [d for d in window if d not in present]

        rows_received = rows_changed = 0
        if missing:
            bars = provider.bars(missing[0], session)
            bars = bars[bars["date"].dt.date.isin(set(missing))]
            rows_received = len(bars)
        symbols = provider.symbols(as_of=session)
        actions = provider.corporate_actions(window[0], session)

        with conn, conn.cursor() as cur:
            if missing and rows_received:
                rows_changed = _upsert_bars(cur, bars, provider.name)
            symbols_changed = _upsert_symbols(cur, symbols, provider.name)
            actions_changed = _upsert_actions(cur, actions, provider.name)
            cur.execute(
                """
                insert into ops.ingestions (logical_date, provider, start_date, end_date,
                                            rows_received, rows_changed, started_at)
                values (%s, %s, %s, %s, %s, %s, %s)
                """,
                (session, provider.name, window[0], session, rows_received, rows_changed, started_at),
            )
    finally:
        conn.close()
    return IngestResult(
        provider=provider.name,
        logical_date=session,
        start_date=window[0],
        end_date=session,
        sessions_fetched=len(missing),
        rows_received=rows_received,
        rows_changed=rows_changed,
        symbols_changed=symbols_changed,
        actions_changed=actions_changed,
    )
