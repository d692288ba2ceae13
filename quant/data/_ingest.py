"""Ingestion of daily bars, symbols and corporate actions into the ``raw`` schema.

Idempotent for a logical date, and nothing ingested is ever deleted: new
bars are copied in, bars of sessions already present are upserted, and a
correction keeps the earlier version in ``raw.bar_revisions``
(:mod:`quant.data._raw_store` writes them; :func:`encode_bars_binary` is the
binary ``COPY`` encoding it uses).

Incremental by default: only sessions of the trailing window that no
provider of the chain has yet are fetched; ``start`` widens the window (a
backfill) and ``refresh`` re-fetches every session of it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from quant.calendar import NotASessionError, get_calendar
from quant.config import Settings, get_settings
from quant.data._chain import FailoverProvider
from quant.data._pgcopy import encode_bars_binary
from quant.data._raw_store import (
    lock_providers,
    present_dates,
    record_sources,
    upsert_actions,
    upsert_symbols,
    write_bars,
)
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
            present = present_dates(cur, names, window)
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
            lock_providers(cur, names)
            if rows_received:
                assert bars is not None
                inserted, updated = write_bars(cur, bars, names, fetch)
            symbols_changed = upsert_symbols(cur, symbols)
            actions_changed = upsert_actions(cur, actions)
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
                record_sources(cur, ingestion_id, bars, sourced.skipped)
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
