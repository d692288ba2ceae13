"""A synthetic, deterministic stock market: the offline default data source.

The market is one price path per name, generated session by session from a
fixed origin session. Every random component draws from its own stream,
``SeedSequence(seed).spawn(...)``-style (``spawn_key = (component, block)``),
one block of :data:`_BLOCK_SESSIONS` sessions at a time. A block's draws
therefore depend only on the seed, the component and the block number, and
the path state is carried from one session to the next: a longer path has
every shorter one as an exact prefix. That makes the bars of a date
independent of the range asked for and of how far the path was generated
before (point in time, idempotent re-ingestion).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from enum import IntEnum

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
    empty_frame,
)
from quant.exceptions import ConfigurationError, ProviderError

__all__ = ["SyntheticProvider"]

SECTORS: tuple[str, ...] = (
    "Communication Services",
    "Consumer Discretionary",
    "Consumer Staples",
    "Energy",
    "Financials",
    "Health Care",
    "Industrials",
    "Information Technology",
    "Materials",
    "Real Estate",
    "Utilities",
)
"""The eleven GICS-like sectors of the synthetic universe."""

_BLOCK_SESSIONS = 256
"""Sessions generated per random-stream block (about one trading year)."""

_T_DOF = 5.0
"""Degrees of freedom of the Student-t shocks (fat tails, finite variance)."""

_MARKET_VOL = 0.010
"""Daily standard deviation of the market factor log return."""

_MARKET_DRIFT = 0.0003
"""Daily mean of the market factor log return (about 7.8 % a year)."""

_SECTOR_VOL = 0.006
"""Daily standard deviation of each sector factor log return."""

_NAME_VOL_RANGE = (0.012, 0.030)
"""Range of the names' total daily log-return volatility."""

_MIN_IDIO_VOL = 0.006
"""Floor on a name's idiosyncratic daily volatility."""

_REVERSAL_WINDOW = 5
"""Sessions of past idiosyncratic return the planted signal reverses."""

_REVERSAL_PER_STRENGTH = 0.5
"""Per-session reversal coefficient per unit of ``signal_strength``."""

_GAP_SHARE = 0.35
"""Share of the day's log return realised overnight (close to open)."""

_GAP_NOISE = 0.30
"""Extra overnight noise, in units of the name's daily volatility."""

_RANGE_SCALE = 0.60
"""Typical excursion of high/low beyond open/close, in daily volatilities."""

_VOLUME_ABS_RETURN_LOADING = 0.60
"""Log-volume response to the absolute return, per daily volatility."""

_VOLUME_NOISE = 0.35
"""Standard deviation of the log-volume noise."""

_DIVIDEND_PERIOD = 63
"""Sessions between two dividends of a payer (about a quarter)."""

_DIVIDEND_PAYER_SHARE = 0.45
"""Share of names that pay dividends."""

_SPLIT_ABOVE_USD = 250.0
"""A name trading above this may split forward (2:1, or 3:1 above twice this)."""

_REVERSE_SPLIT_BELOW_USD = 8.0
"""A name trading below this may reverse split (1:2)."""

_SPLIT_HAZARD = 1.0 / 126.0
"""Daily chance of a split while a name is beyond a split threshold."""

_LISTING_ANCHOR = date(2025, 6, 2)
"""Date of the first late listing in the universe."""

_DELISTING_ANCHOR = date(2026, 3, 13)
"""Date of the first delisting in the universe."""

_EVENT_SPREAD_DAYS = (-540, 90)
"""Calendar-day window around an anchor where further events fall."""

_MIN_SYMBOLS_FOR_EVENTS = 10
"""Universes smaller than this have no listing or delisting."""

_CALENDAR_MARGIN_DAYS = 500
"""Calendar days (over 256 sessions) the trading calendar covers past what is asked."""

_DIVIDEND = 0
_SPLIT = 1
_ACTION_NAMES = {_DIVIDEND: "dividend", _SPLIT: "split"}


class _Stream(IntEnum):
    """Independent random streams, one per model component."""

    STATIC = 0
    MARKET = 1
    SECTOR = 2
    IDIO = 3
    GAP = 4
    RANGE = 5
    VOLUME = 6
    SPLIT = 7


@dataclass(frozen=True)
class _Universe:
    """Static per-name parameters; every array has shape (n_names,)."""

    tickers: np.ndarray  # str
    sector: np.ndarray  # int, index into SECTORS
    beta: np.ndarray  # market beta
    sector_loading: np.ndarray  # loading on the sector factor
    vol: np.ndarray  # total daily log-return volatility
    idio_vol: np.ndarray  # idiosyncratic daily log-return volatility
    initial_price_usd: np.ndarray
    average_volume_shares: np.ndarray
    dividend_yield: np.ndarray  # per dividend, fraction of price; 0 for non-payers
    dividend_phase: np.ndarray  # int, session offset of the first dividend
    listed_on: np.ndarray  # datetime64[D], first bar on or after; origin if from the start
    delisted_on: np.ndarray  # datetime64[D], last bar on or before; NaT if never


@dataclass
class _PathState:
    """The path state carried from one session to the next."""

    close_usd: np.ndarray  # (n_names,) raw close of the last generated session
    idio_history: np.ndarray  # (_REVERSAL_WINDOW, n_names), ring of idiosyncratic log returns
    share_multiplier: np.ndarray  # (n_names,) cumulative split ratio since origin


@dataclass
class _Path:
    """The generated path, sessions 0 .. n_sessions-1 from the origin."""

    open_usd: np.ndarray  # (n_sessions, n_names)
    high_usd: np.ndarray
    low_usd: np.ndarray
    close_usd: np.ndarray
    volume_shares: np.ndarray  # int64
    action_session: np.ndarray  # (n_actions,) int
    action_name: np.ndarray  # (n_actions,) int
    action_kind: np.ndarray  # (n_actions,) int, _DIVIDEND or _SPLIT
    action_ratio: np.ndarray  # (n_actions,) float, NaN for dividends
    action_dividend_usd: np.ndarray  # (n_actions,) float, NaN for splits

    @property
    def n_sessions(self) -> int:
        return int(self.close_usd.shape[0])


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

        self._reversal_coef = _REVERSAL_PER_STRENGTH * self.signal_strength
        self._innovation_scale = 1.0 / math.sqrt(_ar_variance_ratio(self._reversal_coef))
        self._universe = _build_universe(self.n_symbols, self.seed, origin)
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

        self._state = _PathState(
            close_usd=self._universe.initial_price_usd.copy(),
            idio_history=np.zeros((_REVERSAL_WINDOW, self.n_symbols)),
            share_multiplier=np.ones(self.n_symbols),
        )
        width = self.n_symbols
        self._path = _Path(
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
                "action_type": [_ACTION_NAMES[int(k)] for k in path.action_kind[keep]],
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
        if start > end:
            raise ProviderError(f"start {start} is after end {end}")
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
        first_block = have // _BLOCK_SESSIONS
        last_block = (stop - 1) // _BLOCK_SESSIONS
        blocks = [self._generate_block(b) for b in range(first_block, last_block + 1)]
        self._path = _Path(
            **{
                f.name: np.concatenate([getattr(p, f.name) for p in (self._path, *blocks)])
                for f in fields(_Path)
            }
        )

    def _generate_block(self, block: int) -> _Path:
        """Generate the sessions of one block and advance the path state."""
        u = self._universe
        state = self._state
        n_rows, n = _BLOCK_SESSIONS, self.n_symbols
        t0 = block * _BLOCK_SESSIONS
        if (t0 + n_rows) > self._sessions.size:  # pragma: no cover - guarded by the calendar
            raise ProviderError("internal: calendar does not cover the block being generated")

        def rng(stream: _Stream) -> np.random.Generator:
            seq = np.random.SeedSequence(entropy=self.seed, spawn_key=(int(stream), block))
            return np.random.Generator(np.random.PCG64(seq))

        market = _MARKET_DRIFT + _MARKET_VOL * _unit_t(rng(_Stream.MARKET), (n_rows,))
        sector = _SECTOR_VOL * _unit_t(rng(_Stream.SECTOR), (n_rows, len(SECTORS)))
        idio_shock = _unit_t(rng(_Stream.IDIO), (n_rows, n))
        gap_shock = rng(_Stream.GAP).standard_normal((n_rows, n))
        range_shock = np.abs(rng(_Stream.RANGE).standard_normal((2, n_rows, n)))
        volume_shock = rng(_Stream.VOLUME).standard_normal((n_rows, n))
        split_draw = rng(_Stream.SPLIT).random((n_rows, n))

        # Idiosyncratic returns: the only recursive component (planted reversal).
        innovation = idio_shock * (u.idio_vol * self._innovation_scale)
        if self._reversal_coef > 0.0:
            idio = np.empty((n_rows, n))
            history = state.idio_history
            for r in range(n_rows):
                idio[r] = innovation[r] - self._reversal_coef * history.sum(axis=0)
                history[(t0 + r) % _REVERSAL_WINDOW] = idio[r]
        else:
            idio = innovation
        log_return = u.beta * market[:, None] + u.sector_loading * sector[:, u.sector] + idio
        gross = np.exp(log_return)
        gap_gross = np.exp(_GAP_SHARE * log_return + _GAP_NOISE * u.vol * gap_shock)

        sessions_idx = t0 + np.arange(n_rows)
        is_dividend_day = (
            (u.dividend_yield > 0.0)[None, :]
            & (sessions_idx[:, None] > 0)
            & ((sessions_idx[:, None] - u.dividend_phase[None, :]) % _DIVIDEND_PERIOD == 0)
        )

        # Prices: sequential because dividends and splits depend on the price.
        prev_close = np.empty((n_rows, n))
        dividend = np.zeros((n_rows, n))
        ratio = np.ones((n_rows, n))
        close = np.empty((n_rows, n))
        multiplier = np.empty((n_rows, n))
        price = state.close_usd
        shares = state.share_multiplier
        for r in range(n_rows):
            prev_close[r] = price
            floor = price * np.minimum(gross[r], gap_gross[r])
            div = np.where(is_dividend_day[r], np.round(u.dividend_yield * price, 2), 0.0)
            div = np.where(2.0 * div < floor, div, 0.0)  # never a dividend near the price
            splits = (split_draw[r] < _SPLIT_HAZARD) & (div == 0.0)
            up = splits & (price > _SPLIT_ABOVE_USD)
            down = splits & (price < _REVERSE_SPLIT_BELOW_USD)
            rat = np.where(up, np.where(price > 2.0 * _SPLIT_ABOVE_USD, 3.0, 2.0), 1.0)
            rat = np.where(down, 0.5, rat)
            dividend[r] = div
            ratio[r] = rat
            price = (price * gross[r] - div) / rat
            shares = shares * rat
            close[r] = price
            multiplier[r] = shares
        state.close_usd = price
        state.share_multiplier = shares

        open_ = (prev_close * gap_gross - dividend) / ratio
        high = np.maximum(open_, close) * np.exp(_RANGE_SCALE * u.vol * range_shock[0])
        low = np.minimum(open_, close) * np.exp(-_RANGE_SCALE * u.vol * range_shock[1])
        abs_z = np.abs(log_return) / u.vol
        log_volume = (
            np.log(u.average_volume_shares * multiplier)
            + _VOLUME_ABS_RETURN_LOADING * (abs_z - math.sqrt(2.0 / math.pi))
            + _VOLUME_NOISE * volume_shock
            - 0.5 * _VOLUME_NOISE**2
        )
        volume = np.maximum(np.rint(np.exp(log_volume)), 1.0).astype(np.int64)

        div_r, div_n = np.nonzero(dividend > 0.0)
        split_r, split_n = np.nonzero(ratio != 1.0)
        return _Path(
            open_usd=open_,
            high_usd=high,
            low_usd=low,
            close_usd=close,
            volume_shares=volume,
            action_session=np.concatenate([div_r, split_r]) + t0,
            action_name=np.concatenate([div_n, split_n]),
            action_kind=np.concatenate(
                [np.full(div_r.size, _DIVIDEND), np.full(split_r.size, _SPLIT)]
            ),
            action_ratio=np.concatenate([np.full(div_r.size, np.nan), ratio[split_r, split_n]]),
            action_dividend_usd=np.concatenate(
                [dividend[div_r, div_n], np.full(split_r.size, np.nan)]
            ),
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


def _unit_t(rng: np.random.Generator, size: tuple[int, ...]) -> np.ndarray:
    """Student-t draws scaled to unit variance, array of shape ``size``."""
    return rng.standard_t(_T_DOF, size) * math.sqrt((_T_DOF - 2.0) / _T_DOF)


def _ar_variance_ratio(coef: float) -> float:
    """Variance of ``x[t] = -coef * sum(x[t-5:t]) + u[t]`` per unit innovation variance.

    Sum of the squared impulse responses (the process is stationary for
    ``coef < 1``).
    """
    if coef == 0.0:
        return 1.0
    psi = np.zeros(4096)
    psi[0] = 1.0
    for j in range(1, psi.size):
        psi[j] = -coef * psi[max(0, j - _REVERSAL_WINDOW) : j].sum()
    return float(np.sum(psi**2))


def _build_universe(n: int, seed: int, origin: date) -> _Universe:
    """Draw the static per-name parameters from the STATIC stream."""
    rng = np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(entropy=seed, spawn_key=(int(_Stream.STATIC),)))
    )
    width = max(3, len(str(n)))
    tickers = np.array([f"SYN{i:0{width}d}" for i in range(1, n + 1)], dtype=object)
    sector = rng.permutation(np.arange(n) % len(SECTORS))
    beta = rng.uniform(0.6, 1.5, n)
    sector_loading = rng.uniform(0.5, 1.2, n)
    vol_target = rng.uniform(*_NAME_VOL_RANGE, n)
    systematic_var = (beta * _MARKET_VOL) ** 2 + (sector_loading * _SECTOR_VOL) ** 2
    idio_vol = np.sqrt(np.maximum(vol_target**2 - systematic_var, _MIN_IDIO_VOL**2))
    vol = np.sqrt(systematic_var + idio_vol**2)
    initial_price = np.exp(rng.uniform(math.log(10.0), math.log(200.0), n))
    average_volume = np.exp(rng.uniform(math.log(1e5), math.log(1e7), n))
    payer = rng.random(n) < _DIVIDEND_PAYER_SHARE
    dividend_yield = np.where(payer, rng.uniform(0.0025, 0.01, n), 0.0)
    dividend_phase = rng.integers(1, _DIVIDEND_PERIOD + 1, n)

    listed_on = np.full(n, np.datetime64(origin, "D"))
    delisted_on = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    n_events = max(1, round(n / 50)) if n >= _MIN_SYMBOLS_FOR_EVENTS else 0
    movers = rng.permutation(n)[: 2 * n_events]
    listed_on[movers[:n_events]] = _event_dates(rng, n_events, _LISTING_ANCHOR, origin)
    delisted_on[movers[n_events:]] = _event_dates(rng, n_events, _DELISTING_ANCHOR, origin)

    return _Universe(
        tickers=tickers,
        sector=sector,
        beta=beta,
        sector_loading=sector_loading,
        vol=vol,
        idio_vol=idio_vol,
        initial_price_usd=initial_price,
        average_volume_shares=average_volume,
        dividend_yield=dividend_yield,
        dividend_phase=dividend_phase,
        listed_on=listed_on,
        delisted_on=delisted_on,
    )


def _event_dates(rng: np.random.Generator, count: int, anchor: date, origin: date) -> np.ndarray:
    """Listing or delisting dates: the anchor first, the rest spread around it.

    Every date is at least 60 calendar days after the origin.
    """
    earliest = origin + timedelta(days=60)
    anchor = max(anchor, earliest)
    offsets = rng.integers(_EVENT_SPREAD_DAYS[0], _EVENT_SPREAD_DAYS[1] + 1, count)
    dates = [anchor] + [max(anchor + timedelta(days=int(d)), earliest) for d in offsets[1:]]
    return np.array(dates, dtype="datetime64[D]")
