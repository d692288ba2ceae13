"""A synthetic, deterministic stock market: the offline default data source.

The provider serves the price paths of :mod:`quant.data._synthetic_market`
(generated block by block from a fixed origin, each block's draws depending
only on the seed, the component and the block number) as bars, reference data
and corporate actions: the bars of a date are independent of the range asked
for and of how far the path was generated before (point in time, idempotent
re-ingestion).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import fields
from datetime import date, datetime, timedelta

import exchange_calendars as xcals
import numpy as np
import pandas as pd

from quant.data._base import (
    ACTION_COLUMNS,
    ACTION_DTYPES,
    BAR_COLUMNS,
    BAR_DTYPES,
    SYMBOL_COLUMNS,
    SYMBOL_DTYPES,
    check_range,
    empty_frame,
)
from quant.data._synthetic_market import (
    ACTION_NAMES,
    BLOCK_SESSIONS,
    REVERSAL_PER_STRENGTH,
    REVERSAL_WINDOW,
    SECTORS,
    MarketPath,
    PathState,
    ar_variance_ratio,
    build_universe,
    generate_block,
)
from quant.exceptions import ConfigurationError, ProviderError

__all__ = ["SyntheticProvider"]

_CALENDAR_MARGIN_DAYS = 500
"""Calendar days (over 256 sessions) the trading calendar covers past what is asked."""


class SyntheticProvider:
    """A deterministic synthetic equity market on a real exchange calendar.

    Each name's daily log return is a one-factor market model plus a sector
    factor plus idiosyncratic noise, all with Student-t (5 degrees of
    freedom) shocks scaled to unit variance:

    ``r[t, i] = beta[i] * m[t] + loading[i] * s[t, sector(i)] + e[t, i]``

    with the market ``m`` at about 1 % daily volatility and 7.8 % yearly
    drift, sector factors at 0.6 %, betas in [0.6, 1.5] and names' total
    volatility in about [1.2 %, 3 %] daily. Open is gapped from the previous
    close by part of the day's return, high and low extend beyond open and
    close, and volume is lognormal around a per-name average (1e5 to 1e7
    shares), higher on days with a large absolute return.

    Corporate actions: about 45 % of names pay a quarterly cash dividend
    (yield 0.25 % to 1 % of price; the raw price drops by the dividend on
    the ex-date); a name trading above 250 USD may split 2:1 (3:1 above
    500 USD) and one below 8 USD may reverse split 1:2 (the raw price
    moves by the inverse ratio on the ex-date, volume in shares by the
    ratio). The total-return process ``r`` is continuous through both.

    Listing: universes of 10 or more names have ``max(1, round(n / 50))``
    late listings (the first on 2025-06-02) and as many delistings (the
    first on 2026-03-13); no bar exists outside ``[listed_at, delisted_at]``.

    Planted signal: with ``signal_strength = k > 0`` the idiosyncratic
    return reverses its own recent past,

    ``E[e[t, i] | past] = -(k / 2) * sum(e[t-5 : t, i])``,

    a short-term reversal that a cross-sectional model can learn from past
    5-day returns: the rank correlation between a name's past 5-session and
    next 5-session total return, across names, averages about ``-k`` for
    small ``k`` (-0.1 at ``k = 0.1``). The innovation is rescaled so that the
    idiosyncratic volatility stays the same at any strength. With ``k = 0``
    returns are unpredictable: the shocks are independent across sessions.

    Parameters
    ----------
    symbols : int, default 50
        Number of names in the universe (tickers ``SYN001``, ``SYN002``,
        ...; more digits above 999).
    seed : int, default 7
        Random seed; the same seed and parameters give the same market.
    signal_strength : float, default 0.0
        Strength ``k`` of the planted reversal signal, in [0, 1]. Test and
        research use only: 0 is an honest, unpredictable market.
    exchange : str, default "XNYS"
        exchange_calendars code of the trading calendar.
    origin : datetime.date, default 2015-01-02
        Start of the history: the path starts on the first session on or
        after this date, and no data exists before it.

    Raises
    ------
    ConfigurationError
        If a parameter is out of range or the exchange is unknown.
    """

    name: str = "synthetic"

    def __init__(
        self,
        symbols: int = 50,
        seed: int = 7,
        signal_strength: float = 0.0,
        exchange: str = "XNYS",
        origin: date = date(2015, 1, 2),
    ) -> None:
        if not _is_integer(symbols) or symbols < 1:
            raise ConfigurationError(f"symbols must be a positive integer, got {symbols!r}")
        if not _is_integer(seed) or seed < 0:
            raise ConfigurationError(f"seed must be a non-negative integer, got {seed!r}")
        if not isinstance(signal_strength, int | float) or not 0.0 <= signal_strength <= 1.0:
            raise ConfigurationError(
                f"signal_strength must be a number in [0, 1], got {signal_strength!r}"
            )
        if not isinstance(origin, date) or isinstance(origin, datetime):
            raise ConfigurationError(f"origin must be a datetime.date, got {origin!r}")
        try:
            xcals.get_calendar_names(include_aliases=True).index(exchange)
        except ValueError:
            raise ConfigurationError(
                f"exchange {exchange!r} is not an exchange_calendars calendar name"
            ) from None

        self.n_symbols: int = int(symbols)
        self.seed: int = int(seed)
        self.signal_strength: float = float(signal_strength)
        self.exchange: str = exchange
        self.origin: date = origin

        self._reversal_coef = REVERSAL_PER_STRENGTH * self.signal_strength
        self._innovation_scale = 1.0 / math.sqrt(ar_variance_ratio(self._reversal_coef))
        self._universe = build_universe(self.n_symbols, self.seed, origin)
        self._ticker_index = {str(t): i for i, t in enumerate(self._universe.tickers)}

        self._sessions = np.empty(0, dtype="datetime64[ns]")
        self._calendar_end = origin
        events = np.concatenate([self._universe.listed_on, self._universe.delisted_on])
        last_event: date = events[~np.isnat(events)].max().astype(date)
        self._ensure_calendar(max(origin, last_event))
        if self._sessions.size == 0:
            raise ConfigurationError(f"no {exchange} session on or after origin {origin}")

        self._listed_idx = np.searchsorted(
            self._sessions, self._universe.listed_on.astype("datetime64[ns]"), side="left"
        )
        delisted = self._universe.delisted_on.astype("datetime64[ns]")
        self._delisted_idx = np.where(
            np.isnat(delisted),
            np.iinfo(np.int64).max,
            np.searchsorted(self._sessions, delisted, side="right") - 1,
        )

        self._state = PathState(
            close_usd=self._universe.initial_price_usd.copy(),
            idio_history=np.zeros((REVERSAL_WINDOW, self.n_symbols)),
            share_multiplier=np.ones(self.n_symbols),
        )
        width = self.n_symbols
        self._path = MarketPath(
            open_usd=np.empty((0, width)),
            high_usd=np.empty((0, width)),
            low_usd=np.empty((0, width)),
            close_usd=np.empty((0, width)),
            volume_shares=np.empty((0, width), dtype=np.int64),
            action_session=np.empty(0, dtype=np.int64),
            action_name=np.empty(0, dtype=np.int64),
            action_kind=np.empty(0, dtype=np.int64),
            action_ratio=np.empty(0),
            action_dividend_usd=np.empty(0),
        )

    def __repr__(self) -> str:
        return (
            f"SyntheticProvider(symbols={self.n_symbols}, seed={self.seed}, "
            f"signal_strength={self.signal_strength}, exchange={self.exchange!r}, "
            f"origin={self.origin!r})"
        )

    # ------------------------------------------------------------------ public API

    def bars(
        self,
        start: date,
        end: date,
        symbols: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Raw daily bars for the sessions in ``[start, end]``.

        See :meth:`quant.data.MarketDataProvider.bars`.

        No history exists before the origin: a range starting earlier
        returns only the rows from the origin on.

        Raises
        ------
        ProviderError
            If ``start`` is after ``end``, a date is not a plain
            ``datetime.date``, or a symbol is unknown.
        """
        first, stop = self._session_slice(start, end)
        names = self._select(symbols)
        if stop <= first or names.size == 0:
            return empty_frame(BAR_DTYPES)
        self._ensure_path(stop)
        path = self._path

        rows = np.arange(first, stop)
        listed = (rows[:, None] >= self._listed_idx[names][None, :]) & (
            rows[:, None] <= self._delisted_idx[names][None, :]
        )
        block = np.ix_(rows, names)
        frame = pd.DataFrame(
            {
                "date": np.repeat(self._sessions[first:stop], names.size)[listed.ravel()],
                "symbol": np.tile(self._universe.tickers[names], rows.size)[listed.ravel()],
                "open": path.open_usd[block][listed],
                "high": path.high_usd[block][listed],
                "low": path.low_usd[block][listed],
                "close": path.close_usd[block][listed],
                "volume": path.volume_shares[block][listed],
            },
            columns=list(BAR_COLUMNS),
        )
        return frame.astype(dict(BAR_DTYPES))

    def symbols(self, as_of: date | None = None) -> pd.DataFrame:
        """Reference data on the universe, as knowable at ``as_of``.

        See :meth:`quant.data.MarketDataProvider.symbols`. With ``as_of``
        before the origin nothing is knowable and the table is empty.
        """
        n = self.n_symbols
        listed_at = self._session_dates(self._listed_idx)
        delisted_at = self._session_dates(self._delisted_idx)
        keep = np.ones(n, dtype=bool)
        if as_of is not None:
            as_of_ts = np.datetime64(_check_date(as_of, "as_of"), "ns")
            keep = listed_at <= as_of_ts
            delisted_at = np.where(delisted_at <= as_of_ts, delisted_at, np.datetime64("NaT"))
        frame = pd.DataFrame(
            {
                "symbol": self._universe.tickers[keep],
                "sector": np.asarray(SECTORS, dtype=object)[self._universe.sector[keep]],
                "listed_at": listed_at[keep],
                "delisted_at": delisted_at[keep],
            },
            columns=list(SYMBOL_COLUMNS),
        )
        return frame.astype(dict(SYMBOL_DTYPES)).reset_index(drop=True)

    def corporate_actions(
        self,
        start: date,
        end: date,
        symbols: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Splits and dividends with an ex-date in ``[start, end]``.

        See :meth:`quant.data.MarketDataProvider.corporate_actions`. Only
        actions of sessions on which the name is listed are reported.

        No history exists before the origin: a range starting earlier
        returns only the rows from the origin on.

        Raises
        ------
        ProviderError
            If ``start`` is after ``end``, a date is not a plain
            ``datetime.date``, or a symbol is unknown.
        """
        first, stop = self._session_slice(start, end)
        names = self._select(symbols)
        if stop <= first or names.size == 0:
            return empty_frame(ACTION_DTYPES)
        self._ensure_path(stop)
        path = self._path

        wanted = np.zeros(self.n_symbols, dtype=bool)
        wanted[names] = True
        session, name = path.action_session, path.action_name
        keep = (
            (session >= first)
            & (session < stop)
            & wanted[name]
            & (session >= self._listed_idx[name])
            & (session <= self._delisted_idx[name])
        )
        frame = pd.DataFrame(
            {
                "symbol": self._universe.tickers[name[keep]],
                "ex_date": self._sessions[session[keep]],
                "action_type": [ACTION_NAMES[int(k)] for k in path.action_kind[keep]],
                "split_ratio": path.action_ratio[keep],
                "dividend_usd": path.action_dividend_usd[keep],
            },
            columns=list(ACTION_COLUMNS),
        ).astype(dict(ACTION_DTYPES))
        return frame.sort_values(["ex_date", "symbol"], kind="stable").reset_index(drop=True)

    # ------------------------------------------------------------------ internals

    def _select(self, symbols: Sequence[str] | None) -> np.ndarray:
        """Name indices, ascending (= ticker order), of the requested symbols."""
        if symbols is None:
            return np.arange(self.n_symbols)
        if isinstance(symbols, str):
            raise ProviderError("symbols must be a sequence of tickers, not a single string")
        unknown = sorted({s for s in symbols if s not in self._ticker_index})
        if unknown:
            shown = ", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else "")
            raise ProviderError(
                f"{len(unknown)} unknown symbol(s) for provider {self.name!r}: {shown}"
            )
        return np.array(sorted({self._ticker_index[s] for s in symbols}), dtype=np.int64)

    def _session_slice(self, start: date, end: date) -> tuple[int, int]:
        """Session indices ``[first, stop)`` of the sessions in ``[start, end]``.

        Dates before the origin hold no session, so a range starting earlier
        covers only the sessions from the origin on.
        """
        start = _check_date(start, "start")
        end = _check_date(end, "end")
        check_range(start, end)
        self._ensure_calendar(max(end, self.origin))
        first = int(np.searchsorted(self._sessions, np.datetime64(start, "ns"), side="left"))
        stop = int(np.searchsorted(self._sessions, np.datetime64(end, "ns"), side="right"))
        return first, stop

    def _session_dates(self, idx: np.ndarray) -> np.ndarray:
        """Session dates of indices; NaT where an index is past the calendar."""
        valid = (idx >= 0) & (idx < self._sessions.size)
        out = np.full(idx.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
        out[valid] = self._sessions[idx[valid]]
        return out

    def _ensure_calendar(self, needed: date) -> None:
        """Make the session array cover ``needed`` plus a margin of whole blocks."""
        if needed <= self._calendar_end and self._sessions.size:
            return
        # Built two margins ahead, so that a date up to one margin ahead can be
        # asked for later and its block (at most 256 sessions on) still fits.
        end = needed + timedelta(days=2 * _CALENDAR_MARGIN_DAYS)
        calendar = xcals.get_calendar(self.exchange, start=self.origin, end=end)
        sessions = calendar.sessions.tz_localize(None).to_numpy().astype("datetime64[ns]")
        sessions = sessions[sessions >= np.datetime64(self.origin, "ns")]
        if self._sessions.size and not np.array_equal(
            sessions[: self._sessions.size], self._sessions
        ):
            raise ProviderError(f"the {self.exchange} calendar changed while extending it")
        self._sessions = sessions
        self._calendar_end = needed + timedelta(days=_CALENDAR_MARGIN_DAYS)

    def _ensure_path(self, stop: int) -> None:
        """Generate the path through session index ``stop - 1`` if not yet done."""
        have = self._path.n_sessions
        if stop <= have:
            return
        first_block = have // BLOCK_SESSIONS
        last_block = (stop - 1) // BLOCK_SESSIONS
        blocks = [self._generate_block(b) for b in range(first_block, last_block + 1)]
        self._path = MarketPath(
            **{
                f.name: np.concatenate([getattr(p, f.name) for p in (self._path, *blocks)])
                for f in fields(MarketPath)
            }
        )

    def _generate_block(self, block: int) -> MarketPath:
        """Generate the sessions of one block and advance the path state."""
        if (block + 1) * BLOCK_SESSIONS > self._sessions.size:  # pragma: no cover - guarded by the calendar
            raise ProviderError("internal: calendar does not cover the block being generated")
        return generate_block(
            self._universe,
            self._state,
            seed=self.seed,
            block=block,
            reversal_coef=self._reversal_coef,
            innovation_scale=self._innovation_scale,
        )


def _is_integer(value: object) -> bool:
    """True for Python and NumPy integers, False for bools and everything else."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def _check_date(value: date, argument: str) -> date:
    """``value`` if it is a plain date; fail loudly on datetimes and other types."""
    if not isinstance(value, date) or isinstance(value, datetime):
        raise ProviderError(
            f"{argument} must be a datetime.date (not a datetime or string), got {value!r}"
        )
    return value
