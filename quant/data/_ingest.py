"""Ingestion of daily bars, symbols and corporate actions into the ``raw`` schema.

Idempotent for a logical date, and nothing ingested is ever deleted:

* Bars of sessions a provider has no row for yet cannot conflict with
  anything, so they take the fast path: one binary ``COPY`` straight into
  ``raw.bars`` (rows encoded with numpy, no per-row Python).
* Bars of sessions already present (a refresh, or a backfill overlapping
  what is there) take the upsert path: binary ``COPY`` into a temporary
  table, then ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` the values
  differ. A rerun therefore changes nothing, and a correction replaces the
  current row while the trigger on ``raw.bars`` keeps the earlier version
  in ``raw.bar_revisions``.

Which sessions are present is read again under a per-provider advisory
lock inside the writing transaction, so two concurrent ingestions cannot
both take the fast path for the same rows.

Incremental by default: only sessions of the trailing window that no
provider of the chain has yet are fetched; ``start`` widens the window (a
backfill) and ``refresh`` re-fetches every session of it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from quant.calendar import NotASessionError, get_calendar
from quant.config import Settings, get_settings
from quant.data._chain import FailoverProvider
from quant.db import connect
from quant.exceptions import DataValidationError

if TYPE_CHECKING:
    from quant.data._base import MarketDataProvider

__all__ = [
    "IngestResult",
    "encode_bars_binary",
    "ingest_bars",
    "provider_from_settings",
    "providers_from_settings",
]

_PG_EPOCH_DAYS = 10_957
"""Days from 1970-01-01 to 2000-01-01, PostgreSQL's binary date epoch."""

_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_COPY_TRAILER = b"\xff\xff"
_BAR_FIELDS = ("symbol", "date", "provider", "open", "high", "low", "close", "volume")
_LOCK_CLASS = 0x71756E74  # "qunt": advisory-lock namespace of raw.bars ingestion


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one ingestion call did.

    ``rows_changed`` = ``rows_inserted`` (new keys, either path) +
    ``rows_updated`` (corrections). ``sources`` maps each provider to the
    number of symbols it served; ``provider_errors`` holds the errors of
    chain members that failed while a later member stood in.
    """

    provider: str
    logical_date: date
    start_date: date
    end_date: date
    sessions_fetched: int
    rows_received: int
    rows_changed: int
    symbols_changed: int
    actions_changed: int
    rows_inserted: int = 0
    rows_updated: int = 0
    sources: dict[str, int] = field(default_factory=dict)
    symbols_unserved: int = 0
    provider_errors: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("logical_date", "start_date", "end_date"):
            out[key] = out[key].isoformat()
        return out


# ---------------------------------------------------------------------- providers


def _build_one(name: str, settings: Settings) -> MarketDataProvider:
    from quant.data import get_provider

    if name == "synthetic":
        return get_provider(
            "synthetic",
            symbols=settings.synthetic.symbols,
            seed=settings.synthetic.seed,
            signal_strength=settings.synthetic.signal_strength,
            exchange=settings.exchange,
        )
    if name == "csv":
        return get_provider("csv", directory=settings.csv_dir, exchange=settings.exchange)
    if name == "alpaca":
        return get_provider(
            "alpaca",
            symbols=settings.provider_symbols,
            data_url=settings.alpaca_data_url,
            feed=settings.alpaca_feed,
            exchange=settings.exchange,
        )
    if name == "ibkr":
        return get_provider(
            "ibkr",
            symbols=settings.provider_symbols,
            host=settings.ib_host,
            port=settings.ib_port,
            client_id=settings.ib_client_id,
            exchange=settings.exchange,
        )
    return get_provider(name)


def providers_from_settings(settings: Settings) -> list[MarketDataProvider]:
    """One provider per name of ``settings.provider``, in chain order."""
    return [_build_one(name, settings) for name in settings.providers]


def provider_from_settings(settings: Settings) -> MarketDataProvider:
    """The market-data provider the settings name: one provider, or a failover chain."""
    members = providers_from_settings(settings)
    if len(members) == 1 and not settings.provider_symbols:
        return members[0]
    return FailoverProvider(members, symbols=settings.provider_symbols)


def _as_chain(provider: MarketDataProvider) -> FailoverProvider:
    if isinstance(provider, FailoverProvider):
        return provider
    return FailoverProvider([provider])


# ---------------------------------------------------------------------- encoding


def encode_bars_binary(bars: pd.DataFrame) -> bytes:
    """Bars as one PostgreSQL binary ``COPY`` stream, built with numpy.

    Parameters
    ----------
    bars : pandas.DataFrame of shape (n_rows, 8)
        :data:`~quant.data.BAR_COLUMNS` plus ``provider``; prices finite,
        ``volume`` integral.

    Returns
    -------
    bytes
        Header, one tuple per row with the fields of ``_BAR_FIELDS`` (text,
        date, text, four float8, int8), trailer.
    """
    return b"".join(_binary_chunks(bars))


_ROW_DTYPE_CACHE: dict[tuple[int, int], np.dtype] = {}


def _row_dtype(ls: int, lp: int) -> np.dtype:
    """Packed big-endian layout of one COPY tuple with a symbol of ``ls`` and provider of ``lp`` bytes."""
    dtype = _ROW_DTYPE_CACHE.get((ls, lp))
    if dtype is None:
        dtype = np.dtype(
            [
                ("nf", ">i2"),
                ("ls", ">i4"),
                ("s", f"S{ls}"),
                ("ld", ">i4"),
                ("d", ">i4"),
                ("lp", ">i4"),
                ("p", f"S{lp}"),
                ("lo", ">i4"),
                ("o", ">f8"),
                ("lh", ">i4"),
                ("h", ">f8"),
                ("ll", ">i4"),
                ("l", ">f8"),
                ("lc", ">i4"),
                ("c", ">f8"),
                ("lv", ">i4"),
                ("v", ">i8"),
            ]
        )
        _ROW_DTYPE_CACHE[(ls, lp)] = dtype
    return dtype


def _binary_chunks(bars: pd.DataFrame, rows_per_chunk: int = 65_536) -> Iterator[bytes]:
    """The binary COPY stream of ``bars`` in pieces, encoded lazily.

    Rows go in (symbol, date) order, so the primary key's btree grows at its
    right edge; they are grouped by the byte lengths of symbol and provider
    (the tuple layout), which COPY does not mind.
    """
    yield _COPY_HEADER
    n = len(bars)
    if n:
        sym_code, sym_values = pd.factorize(bars["symbol"], sort=True)
        prov_code, prov_values = pd.factorize(bars["provider"], sort=True)
        sym_bytes = [str(v).encode("utf-8") for v in sym_values]
        prov_bytes = [str(v).encode("utf-8") for v in prov_values]
        sym_len = np.array([len(b) for b in sym_bytes], dtype=np.int64)[sym_code]
        prov_len = np.array([len(b) for b in prov_bytes], dtype=np.int64)[prov_code]
        days = (
            bars["date"].to_numpy().astype("datetime64[D]").astype(np.int64) - _PG_EPOCH_DAYS
        ).astype(np.int32)
        order = np.lexsort((days, sym_code))
        prices = {c: bars[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close")}
        volume = bars["volume"].to_numpy(dtype=np.int64)
        key = (sym_len * 4096 + prov_len)[order]
        for group in np.unique(key):
            members = order[key == group]
            ls, lp = int(group // 4096), int(group % 4096)
            sym_table = np.array(sym_bytes, dtype=f"S{max(ls, 1)}")
            prov_table = np.array(prov_bytes, dtype=f"S{max(lp, 1)}")
            for lo in range(0, members.size, rows_per_chunk):
                idx = members[lo : lo + rows_per_chunk]
                rows = np.empty(idx.size, dtype=_row_dtype(ls, lp))
                rows["nf"] = len(_BAR_FIELDS)
                rows["ls"], rows["s"] = ls, sym_table[sym_code[idx]]
                rows["ld"], rows["d"] = 4, days[idx]
                rows["lp"], rows["p"] = lp, prov_table[prov_code[idx]]
                for short, column in (("o", "open"), ("h", "high"), ("l", "low"), ("c", "close")):
                    rows["l" + short], rows[short] = 8, prices[column][idx]
                rows["lv"], rows["v"] = 8, volume[idx]
                yield rows.tobytes()
    yield _COPY_TRAILER


class _ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte strings (for ``copy_expert``)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return b""
        if size < 0 or size >= len(self._pending):
            out, self._pending = self._pending, b""
        else:
            out, self._pending = self._pending[:size], self._pending[size:]
        return out


def _copy_bars(cur: Any, table: str, bars: pd.DataFrame) -> None:
    """Binary COPY of ``bars`` into ``table``, encoding while the server loads."""
    cur.copy_expert(
        f"copy {table} ({', '.join(_BAR_FIELDS)}) from stdin with (format binary)",
        _ChunkReader(_binary_chunks(bars)),
        size=1 << 22,
    )


def _copy_frame(cur: Any, table: str, frame: pd.DataFrame, columns: list[str]) -> None:
    buf = io.StringIO()
    frame[columns].to_csv(buf, index=False, header=False, date_format="%Y-%m-%d")
    buf.seek(0)
    cur.copy_expert(f"copy {table} ({', '.join(columns)}) from stdin with (format csv)", buf)


# ---------------------------------------------------------------------- checks


def _check_bars(bars: pd.DataFrame) -> pd.DataFrame:
    """Refuse bars that would corrupt ``raw.bars``; return them with exact dtypes.

    Raises
    ------
    DataValidationError
        Naming the provider, symbol, date and column of the first bad row.
    """
    if bars.empty:
        return bars

    def where(i: int) -> str:
        row = bars.iloc[i]
        return f"provider {row['provider']}, {row['symbol']} on {str(row['date'])[:10]}"

    for column in ("open", "high", "low", "close"):
        values = bars[column].to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values) | (values <= 0))
        if bad.size:
            raise DataValidationError(
                f"{where(int(bad[0]))}: column {column!r} must be a positive price, "
                f"got {values[bad[0]]!r}"
            )
    bad = np.flatnonzero(bars["high"].to_numpy() < bars["low"].to_numpy())
    if bad.size:
        raise DataValidationError(f"{where(int(bad[0]))}: column 'high' is below 'low'")
    volume = bars["volume"].to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(volume) | (volume < 0) | (volume % 1 != 0))
    if bad.size:
        raise DataValidationError(
            f"{where(int(bad[0]))}: column 'volume' must be a whole number of shares >= 0"
        )
    bad = np.flatnonzero(bars.duplicated(["symbol", "date", "provider"]).to_numpy())
    if bad.size:
        raise DataValidationError(f"{where(int(bad[0]))}: column 'date' has a duplicate bar")
    return bars.astype({"volume": np.int64})


# ---------------------------------------------------------------------- writes


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


def _present_dates(cur: Any, providers: list[str], days: list[date]) -> dict[str, set[date]]:
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
    _copy_bars(cur, "tmp_bars", bars)
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


def _upsert_symbols(cur: Any, symbols: pd.DataFrame) -> int:
    if symbols.empty:
        return 0
    cur.execute(
        "create temporary table tmp_symbols (like raw.symbols including defaults) on commit drop"
    )
    _copy_frame(
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


def _upsert_actions(cur: Any, actions: pd.DataFrame) -> int:
    if actions.empty:
        return 0
    cur.execute(
        "create temporary table tmp_actions (like raw.corporate_actions including defaults) "
        "on commit drop"
    )
    cols = ["symbol", "ex_date", "action_type", "provider", "split_ratio", "dividend_usd"]
    _copy_frame(cur, "tmp_actions", actions, cols)
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


def _record_sources(
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


# ---------------------------------------------------------------------- entry point


def ingest_bars(
    logical_date: date,
    *,
    provider: MarketDataProvider | None = None,
    start: date | None = None,
    settings: Settings | None = None,
    refresh: bool = False,
) -> IngestResult:
    """Ingest what is missing of the window ending at ``logical_date``.

    Parameters
    ----------
    logical_date : date
        The session the run is for; nothing after its close is read.
    provider : MarketDataProvider, optional
        A provider or a :class:`~quant.data.FailoverProvider`; defaults to
        what ``QUANT_PROVIDER`` names.
    start : date, optional
        First session to cover (a backfill range); defaults to
        ``history_sessions`` sessions before ``logical_date``.
    settings : Settings, optional
    refresh : bool, default False
        Re-fetch every session of the window, not only the missing ones:
        changed bars are corrected (earlier versions kept in
        ``raw.bar_revisions``), identical ones left untouched.

    Returns
    -------
    IngestResult

    Raises
    ------
    NotASessionError
        If ``logical_date`` is not a session.
    ProviderError, DataValidationError
        If the data cannot be fetched or is malformed; nothing is written.
    """
    settings = settings or get_settings()
    chain = _as_chain(provider or provider_from_settings(settings))
    names = [p.name for p in chain.providers]
    cal = get_calendar(settings.exchange)
    session = cal.require_session(logical_date)
    if start is None:
        try:
            start = cal.shift(session, -(settings.history_sessions - 1))
        except NotASessionError:
            start = cal.first_session
    window = cal.sessions(start, session)
    started_at = datetime.now(timezone.utc)

    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            present = _present_dates(cur, names, window)
        known = set().union(*present.values())
        fetch = list(window) if refresh else [d for d in window if d not in known]

        sourced = None
        bars = None
        if fetch:
            sourced = chain.fetch_bars(fetch[0], session)
            wanted = np.array(fetch, dtype="datetime64[D]").astype("datetime64[ns]")
            bars = sourced.bars
            bars = bars.loc[np.isin(bars["date"].to_numpy(dtype="datetime64[ns]"), wanted)]
            bars = _check_bars(bars.reset_index(drop=True))
        symbols, symbol_errors = chain.reference_by_provider(as_of=session)
        actions, action_errors = chain.actions_by_provider(window[0], session)
        errors = {**(sourced.errors if sourced else {}), **symbol_errors, **action_errors}

        rows_received = 0 if bars is None else len(bars)
        inserted = updated = 0
        with conn, conn.cursor() as cur:
            for name in sorted(names):
                cur.execute("select pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_CLASS, name))
            if rows_received:
                assert bars is not None
                now_present = _present_dates(cur, names, fetch)
                overlap = _overlap(bars, now_present)
                fresh = bars.loc[~overlap]
                if len(fresh):
                    _copy_bars(cur, "raw.bars", fresh)
                    inserted = len(fresh)
                if overlap.any():
                    new, updated = _upsert_bars(cur, bars.loc[overlap])
                    inserted += new
            symbols_changed = _upsert_symbols(cur, symbols)
            actions_changed = _upsert_actions(cur, actions)
            cur.execute(
                """
                insert into ops.ingestions (logical_date, provider, start_date, end_date,
                                            rows_received, rows_changed, started_at,
                                            rows_inserted, rows_updated, sessions_fetched,
                                            provider_errors)
                values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                returning ingestion_id
                """,
                (
                    session,
                    chain.name,
                    window[0],
                    session,
                    rows_received,
                    inserted + updated,
                    started_at,
                    inserted,
                    updated,
                    len(fetch),
                    json.dumps(errors),
                ),
            )
            ingestion_id = cur.fetchone()[0]
            if bars is not None and sourced is not None:
                _record_sources(cur, ingestion_id, bars, sourced.skipped)
    finally:
        conn.close()
    sources: dict[str, int] = {}
    if bars is not None and rows_received:
        counts = bars.groupby("provider")["symbol"].nunique()
        sources = {name: int(counts[name]) for name in names if name in counts.index}
    return IngestResult(
        provider=chain.name,
        logical_date=session,
        start_date=window[0],
        end_date=session,
        sessions_fetched=len(fetch),
        rows_received=rows_received,
        rows_changed=inserted + updated,
        symbols_changed=symbols_changed,
        actions_changed=actions_changed,
        rows_inserted=inserted,
        rows_updated=updated,
        sources=sources,
        symbols_unserved=len(sourced.unserved) if sourced else 0,
        provider_errors=errors,
    )
