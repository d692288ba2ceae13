"""A market-data provider serving fixed tables, for tests of ingestion and failover."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

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

__all__ = ["StaticProvider"]


class StaticProvider:
    """Serves the given bars, reference data and actions, filtered like a real provider.

    Parameters
    ----------
    name : str
        Provider name stored with the rows.
    bars : pandas.DataFrame
        Columns :data:`~quant.data.BAR_COLUMNS`.
    symbols, actions : pandas.DataFrame, optional
        Reference data (default: every bar symbol, sector "Unknown", listed on
        its first bar) and corporate actions (default: none).
    lists_universe : bool, default True
        ``False`` makes it behave like alpaca/ibkr (asked for any symbol).

    Attributes
    ----------
    calls : list of tuple
        ``(start, end, symbols)`` of every :meth:`bars` call.
    """

    def __init__(
        self,
        name: str,
        bars: pd.DataFrame,
        symbols: pd.DataFrame | None = None,
        actions: pd.DataFrame | None = None,
        *,
        lists_universe: bool = True,
    ) -> None:
        self.name = name
        self.lists_universe = lists_universe
        self._bars = bars[list(BAR_COLUMNS)].astype(dict(BAR_DTYPES)).reset_index(drop=True)
        if symbols is None:
            first = self._bars.groupby("symbol")["date"].min()
            symbols = pd.DataFrame(
                {
                    "symbol": first.index.to_numpy(dtype=object),
                    "sector": "Unknown",
                    "listed_at": first.to_numpy(),
                    "delisted_at": np.full(len(first), np.datetime64("NaT"), "datetime64[ns]"),
                }
            )
        self._symbols = symbols[list(SYMBOL_COLUMNS)].astype(dict(SYMBOL_DTYPES))
        self._actions = (
            empty_frame(ACTION_DTYPES)
            if actions is None
            else actions[list(ACTION_COLUMNS)].astype(dict(ACTION_DTYPES))
        )
        self.calls: list[tuple[date, date, tuple[str, ...] | None]] = []

    def bars(self, start: date, end: date, symbols: Sequence[str] | None = None) -> pd.DataFrame:
        self.calls.append((start, end, None if symbols is None else tuple(symbols)))
        b = self._bars
        keep = (b["date"] >= pd.Timestamp(start)) & (b["date"] <= pd.Timestamp(end))
        if symbols is not None:
            keep &= b["symbol"].isin(list(symbols))
        return b.loc[keep].sort_values(["date", "symbol"]).reset_index(drop=True)

    def symbols(self, as_of: date | None = None) -> pd.DataFrame:
        s = self._symbols
        if as_of is not None:
            s = s.loc[s["listed_at"].isna() | (s["listed_at"] <= pd.Timestamp(as_of))]
        return s.sort_values("symbol").reset_index(drop=True)

    def corporate_actions(
        self, start: date, end: date, symbols: Sequence[str] | None = None
    ) -> pd.DataFrame:
        a = self._actions
        keep = (a["ex_date"] >= pd.Timestamp(start)) & (a["ex_date"] <= pd.Timestamp(end))
        if symbols is not None:
            keep &= a["symbol"].isin(list(symbols))
        return a.loc[keep].reset_index(drop=True)
