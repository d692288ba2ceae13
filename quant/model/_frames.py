"""Point-in-time price features and forward-return labels computed from bars in memory.

The same shapes as ``marts.features`` and ``marts.labels`` (one row per
(symbol, session_date)), for research, benchmarks and tests that run without
the database. Every feature at session t uses only bars dated t or earlier;
a window that is not full yields NaN, never a filled value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["price_features", "forward_labels", "total_return_index"]

_RETURN_WINDOWS = (1, 2, 3, 5, 10, 21, 63, 126, 252)
_VOL_WINDOWS = (5, 10, 20, 60, 120)
_MA_WINDOWS = (10, 20, 50, 200)


def _wide(bars: pd.DataFrame, column: str) -> pd.DataFrame:
    return bars.pivot(index="date", columns="symbol", values=column).sort_index()


def total_return_index(bars: pd.DataFrame, actions: pd.DataFrame | None = None) -> pd.DataFrame:
    """Total-return index per name from raw closes, splits and cash dividends.

    Parameters
    ----------
    bars : DataFrame
        Raw daily bars with columns ``date``, ``symbol``, ``close`` (USD).
    actions : DataFrame, optional
        Corporate actions with ``symbol``, ``ex_date``, ``action_type``
        (``split`` / ``dividend``), ``split_ratio`` and ``dividend_usd``.

    Returns
    -------
    DataFrame of shape (n_sessions, n_symbols)
        Index 1.0 at each name's first bar; NaN where a name has no bar.
    """
    close = _wide(bars, "close")
    ratio = pd.DataFrame(1.0, index=close.index, columns=close.columns)
    dividend = pd.DataFrame(0.0, index=close.index, columns=close.columns)
    if actions is not None and len(actions):
        splits = actions[actions["action_type"] == "split"]
        for row in splits.itertuples(index=False):
            if row.ex_date in ratio.index and row.symbol in ratio.columns:
                ratio.loc[row.ex_date, row.symbol] *= float(row.split_ratio)
        divs = actions[actions["action_type"] == "dividend"]
        for row in divs.itertuples(index=False):
            if row.ex_date in dividend.index and row.symbol in dividend.columns:
                dividend.loc[row.ex_date, row.symbol] += float(row.dividend_usd)
    previous = close.shift(1)
    daily = (close * ratio + dividend) / previous - 1.0
    growth = (1.0 + daily).where(previous.notna() & close.notna())
    growth = growth.mask(close.notna() & previous.isna(), 1.0)
    return growth.cumprod(skipna=True).where(close.notna())


def _stack(wide: dict[str, pd.DataFrame]) -> pd.DataFrame:
    columns = {name: frame.stack(future_stack=True) for name, frame in wide.items()}
    out = pd.DataFrame(columns)
    out.index = out.index.set_names(["session_date", "symbol"])
    out = out.reset_index()
    out["session_date"] = pd.to_datetime(out["session_date"]).dt.date
    return out


def price_features(bars: pd.DataFrame, actions: pd.DataFrame | None = None) -> pd.DataFrame:
    """About thirty trailing price and volume features per (symbol, session).

    Parameters
    ----------
    bars : DataFrame
        Raw daily bars: ``date``, ``symbol``, ``open``, ``high``, ``low``,
        ``close`` (USD), ``volume`` (shares).
    actions : DataFrame, optional
        Corporate actions (see :func:`total_return_index`).

    Returns
    -------
    DataFrame
        ``symbol``, ``session_date`` (``datetime.date``) and float feature
        columns: trailing returns, volatilities, moving-average distances,
        range position, RSI, volume z-scores, beta to the equal-weighted
        market. Rows exist where the name has a bar.
    """
    index = total_return_index(bars, actions)
    has_bar = index.notna()
    log_ret = np.log(index / index.shift(1))
    daily = index / index.shift(1) - 1.0
    market = daily.mean(axis=1)
    volume = _wide(bars, "volume").astype(float).reindex_like(index)
    dollar = (volume * _wide(bars, "close").reindex_like(index)).replace(0.0, np.nan)
    log_volume = np.log(volume.replace(0.0, np.nan))

    out: dict[str, pd.DataFrame] = {}
    for w in _RETURN_WINDOWS:
        out[f"return_{w}d"] = index / index.shift(w) - 1.0
    out["momentum_12_1"] = index.shift(21) / index.shift(252) - 1.0
    out["excess_return_5d"] = out["return_5d"].sub(out["return_5d"].mean(axis=1), axis=0)
    out["excess_return_21d"] = out["return_21d"].sub(out["return_21d"].mean(axis=1), axis=0)
    for w in _VOL_WINDOWS:
        out[f"volatility_{w}d"] = log_ret.rolling(w, min_periods=w).std() * np.sqrt(252.0)
    downside = log_ret.clip(upper=0.0) ** 2
    for w in (20, 60):
        out[f"downside_volatility_{w}d"] = np.sqrt(downside.rolling(w, min_periods=w).mean())
    out["volatility_ratio_20d_60d"] = out["volatility_20d"] / out["volatility_60d"]
    out["skew_20d"] = log_ret.rolling(20, min_periods=20).skew()
    out["max_return_20d"] = daily.rolling(20, min_periods=20).max()
    for w in _MA_WINDOWS:
        out[f"distance_ma_{w}d"] = index / index.rolling(w, min_periods=w).mean() - 1.0
    out["distance_high_63d"] = index / index.rolling(63, min_periods=63).max() - 1.0
    out["distance_low_63d"] = index / index.rolling(63, min_periods=63).min() - 1.0
    change = index.diff()
    gains = change.clip(lower=0.0).rolling(14, min_periods=14).sum()
    moves = change.abs().rolling(14, min_periods=14).sum()
    out["rsi_14d"] = 100.0 * gains / moves.replace(0.0, np.nan)
    mean_lv = log_volume.rolling(20, min_periods=20).mean()
    sd_lv = log_volume.rolling(20, min_periods=20).std()
    # a constant series has no outliers: its z-score is 0, not undefined (as marts.features)
    out["volume_zscore_20d"] = ((log_volume - mean_lv) / sd_lv).mask(sd_lv < 1e-9, 0.0)
    out["log_adv_20d_usd"] = np.log(dollar.rolling(20, min_periods=20).mean())
    out["volume_ratio_5d_20d"] = (
        volume.rolling(5, min_periods=5).mean() / volume.rolling(20, min_periods=20).mean() - 1.0
    )
    cov = daily.mul(market, axis=0).rolling(60, min_periods=60).mean() - daily.rolling(
        60, min_periods=60
    ).mean().mul(market.rolling(60, min_periods=60).mean(), axis=0)
    var = market.rolling(60, min_periods=60).var(ddof=0)
    out["beta_60d"] = cov.div(var.replace(0.0, np.nan), axis=0)
    out = {name: frame.where(has_bar) for name, frame in out.items()}
    frame = _stack(out)
    present = has_bar.stack(future_stack=True).to_numpy()
    return frame.loc[present].sort_values(["session_date", "symbol"]).reset_index(drop=True)


def forward_labels(
    bars: pd.DataFrame,
    actions: pd.DataFrame | None = None,
    horizons: Sequence[int] = (1, 5, 20),
    open_horizons: Sequence[int] = (1, 5, 10, 20),
) -> pd.DataFrame:
    """Forward total returns per (symbol, session) and the session each horizon ends.

    Parameters
    ----------
    bars, actions : DataFrame
        As for :func:`price_features`.
    horizons : sequence of int
        Horizons in sessions of the name's own bars.
    open_horizons : sequence of int
        Horizons of the tradeable returns (needs an ``open`` column in ``bars``).

    Returns
    -------
    DataFrame
        ``symbol``, ``session_date`` and, per horizon h, ``forward_return_{h}d``
        (fraction) and ``label_end_date_{h}d`` (``datetime.date``); NaN / None
        where the end session is not in ``bars``. Per open horizon h,
        ``open_return_{h}d``: the adjusted open of the next bar to the
        adjusted open h bars after it (what an order filled at the next open
        earns), and ``open_label_end_date_{h}d``, the session of that last open.
    """
    index = total_return_index(bars, actions)
    wide: dict[str, pd.DataFrame] = {}
    dates = pd.DataFrame(
        np.repeat(index.index.to_numpy()[:, None], index.shape[1], axis=1),
        index=index.index,
        columns=index.columns,
    ).where(index.notna())
    for h in horizons:
        ahead = index.shift(-h)
        wide[f"forward_return_{h}d"] = ahead / index - 1.0
        wide[f"label_end_date_{h}d"] = dates.shift(-h).where(ahead.notna() & index.notna())
    end_columns = [f"label_end_date_{h}d" for h in horizons]
    if open_horizons:
        # the index is close times a factor per bar: the same factor adjusts that bar's open
        adj_open = _wide(bars, "open").reindex_like(index) * index / _wide(bars, "close").reindex_like(
            index
        )
        bought = adj_open.shift(-1)
        for h in open_horizons:
            sold = adj_open.shift(-(h + 1))
            wide[f"open_return_{h}d"] = sold / bought - 1.0
            wide[f"open_label_end_date_{h}d"] = dates.shift(-(h + 1)).where(
                sold.notna() & bought.notna() & index.notna()
            )
            end_columns.append(f"open_label_end_date_{h}d")
    frame = _stack(wide)
    present = index.notna().stack(future_stack=True).to_numpy()
    frame = frame.loc[present]
    for column in end_columns:
        frame[column] = pd.to_datetime(frame[column]).dt.date
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame.sort_values(["session_date", "symbol"]).reset_index(drop=True)
