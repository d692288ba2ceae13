"""The synthetic market's model: static universe, random streams, block-wise price paths.

The market is one price path per name, generated session by session from a
fixed origin session. Every random component draws from its own stream,
``SeedSequence(seed).spawn(...)``-style (``spawn_key = (component, block)``),
one block of :data:`BLOCK_SESSIONS` sessions at a time. A block's draws
therefore depend only on the seed, the component and the block number, and
the path state is carried from one session to the next: a longer path has
every shorter one as an exact prefix. That makes the bars of a date
independent of the range asked for and of how far the path was generated
before (point in time, idempotent re-ingestion).

:class:`quant.data.SyntheticProvider` serves the path as bars, reference data
and corporate actions; its docstring describes the model's figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from enum import IntEnum

import numpy as np

__all__ = [
    "ACTION_NAMES",
    "BLOCK_SESSIONS",
    "REVERSAL_PER_STRENGTH",
    "REVERSAL_WINDOW",
    "SECTORS",
    "MarketPath",
    "PathState",
    "Universe",
    "ar_variance_ratio",
    "build_universe",
    "generate_block",
]

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

BLOCK_SESSIONS = 256
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

REVERSAL_WINDOW = 5
"""Sessions of past idiosyncratic return the planted signal reverses."""

REVERSAL_PER_STRENGTH = 0.5
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

_DIVIDEND = 0
_SPLIT = 1
ACTION_NAMES = {_DIVIDEND: "dividend", _SPLIT: "split"}


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
class Universe:
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
class PathState:
    """The path state carried from one session to the next."""

    close_usd: np.ndarray  # (n_names,) raw close of the last generated session
    idio_history: np.ndarray  # (REVERSAL_WINDOW, n_names), ring of idiosyncratic log returns
    share_multiplier: np.ndarray  # (n_names,) cumulative split ratio since origin


@dataclass
class MarketPath:
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


def generate_block(
    universe: Universe,
    state: PathState,
    *,
    seed: int,
    block: int,
    reversal_coef: float,
    innovation_scale: float,
) -> MarketPath:
    """Generate the sessions of one block and advance the path state.

    Parameters
    ----------
    universe : Universe
        The static per-name parameters (n_names names).
    state : PathState
        The state after the previous block's last session; updated in place
        to the state after this block's last session.
    seed : int
        Random seed of the market.
    block : int
        Block number: sessions ``block * BLOCK_SESSIONS`` to
        ``(block + 1) * BLOCK_SESSIONS - 1`` from the origin.
    reversal_coef : float
        Per-session reversal coefficient of the planted signal (0 = none).
    innovation_scale : float
        Factor on the idiosyncratic innovation that keeps its volatility at
        the name's own whatever ``reversal_coef``.

    Returns
    -------
    MarketPath
        The block's ``BLOCK_SESSIONS`` sessions, actions numbered by session
        from the origin.
    """
    u = universe
    n_rows, n = BLOCK_SESSIONS, u.tickers.size
    t0 = block * BLOCK_SESSIONS

    def rng(stream: _Stream) -> np.random.Generator:
        seq = np.random.SeedSequence(entropy=seed, spawn_key=(int(stream), block))
        return np.random.Generator(np.random.PCG64(seq))

    market = _MARKET_DRIFT + _MARKET_VOL * _unit_t(rng(_Stream.MARKET), (n_rows,))
    sector = _SECTOR_VOL * _unit_t(rng(_Stream.SECTOR), (n_rows, len(SECTORS)))
    idio_shock = _unit_t(rng(_Stream.IDIO), (n_rows, n))
    gap_shock = rng(_Stream.GAP).standard_normal((n_rows, n))
    range_shock = np.abs(rng(_Stream.RANGE).standard_normal((2, n_rows, n)))
    volume_shock = rng(_Stream.VOLUME).standard_normal((n_rows, n))
    split_draw = rng(_Stream.SPLIT).random((n_rows, n))

    # Idiosyncratic returns: the only recursive component (planted reversal).
    innovation = idio_shock * (u.idio_vol * innovation_scale)
    if reversal_coef > 0.0:
        idio = np.empty((n_rows, n))
        history = state.idio_history
        for r in range(n_rows):
            idio[r] = innovation[r] - reversal_coef * history.sum(axis=0)
            history[(t0 + r) % REVERSAL_WINDOW] = idio[r]
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
    return MarketPath(
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



def _unit_t(rng: np.random.Generator, size: tuple[int, ...]) -> np.ndarray:
    """Student-t draws scaled to unit variance, array of shape ``size``."""
    return rng.standard_t(_T_DOF, size) * math.sqrt((_T_DOF - 2.0) / _T_DOF)


def ar_variance_ratio(coef: float) -> float:
    """Variance of ``x[t] = -coef * sum(x[t-5:t]) + u[t]`` per unit innovation variance.

    Sum of the squared impulse responses (the process is stationary for
    ``coef < 1``).
    """
    if coef == 0.0:
        return 1.0
    psi = np.zeros(4096)
    psi[0] = 1.0
    for j in range(1, psi.size):
        psi[j] = -coef * psi[max(0, j - REVERSAL_WINDOW) : j].sum()
    return float(np.sum(psi**2))


def build_universe(n: int, seed: int, origin: date) -> Universe:
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

    return Universe(
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
