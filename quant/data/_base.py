"""The contract every market-data provider implements.

A provider delivers three tables, each as a :class:`pandas.DataFrame` with a
fixed set of columns (the ``*_COLUMNS`` constants) and dtypes (the
``*_DTYPES`` mappings):

* raw daily bars (unadjusted prices, shares traded);
* reference data on the symbols (sector, listing and delisting dates);
* corporate actions (splits and cash dividends by ex-date).

Dates are tz-naive ``datetime64[ns]`` values at midnight (the session date);
a missing date is ``NaT``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Protocol, runtime_checkable

import pandas as pd

__all__ = [
    "ACTION_COLUMNS",
    "ACTION_DTYPES",
    "BAR_COLUMNS",
    "BAR_DTYPES",
    "SYMBOL_COLUMNS",
    "SYMBOL_DTYPES",
    "ConfiguredSymbols",
    "MarketDataProvider",
    "bars_frame",
    "check_range",
]

BAR_COLUMNS: tuple[str, ...] = ("date", "symbol", "open", "high", "low", "close", "volume")
"""Columns of :meth:`MarketDataProvider.bars`, in order."""

BAR_DTYPES: Mapping[str, str] = {
    "date": "datetime64[ns]",
    "symbol": "str",
    "open": "float64",
    "high": "float64",
    "low": "float64",
    "close": "float64",
    "volume": "int64",
}
"""Dtype of each bar column."""

SYMBOL_COLUMNS: tuple[str, ...] = ("symbol", "sector", "listed_at", "delisted_at")
"""Columns of :meth:`MarketDataProvider.symbols`, in order."""

SYMBOL_DTYPES: Mapping[str, str] = {
    "symbol": "str",
    "sector": "str",
    "listed_at": "datetime64[ns]",
    "delisted_at": "datetime64[ns]",
}
"""Dtype of each reference-data column."""

ACTION_COLUMNS: tuple[str, ...] = (
    "symbol",
    "ex_date",
    "action_type",
    "split_ratio",
    "dividend_usd",
)
"""Columns of :meth:`MarketDataProvider.corporate_actions`, in order."""

ACTION_DTYPES: Mapping[str, str] = {
    "symbol": "str",
    "ex_date": "datetime64[ns]",
    "action_type": "str",
    "split_ratio": "float64",
    "dividend_usd": "float64",
}
"""Dtype of each corporate-action column."""


@runtime_checkable
class MarketDataProvider(Protocol):
    """A source of daily bars, reference data and corporate actions.

    Implementations must be deterministic and point in time: the rows for a
    given date do not depend on the range asked for, so re-ingesting a date
    gives the same rows.

    Attributes
    ----------
    name : str
        Short identifier of the provider (``"synthetic"``, ...), stored with
        every ingested row.
    """

    name: str

    def bars(
        self,
        start: date,
        end: date,
        symbols: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Raw (unadjusted) daily bars for the sessions in ``[start, end]``.

        Parameters
        ----------
        start, end : datetime.date
            First and last calendar date of the range, both inclusive.
        symbols : sequence of str, optional
            Restrict to these tickers; ``None`` means the whole universe.

        Returns
        -------
        pandas.DataFrame of shape (n_rows, 7)
            Columns :data:`BAR_COLUMNS`: ``date`` (datetime64[ns], the
            session), ``symbol`` (str), ``open``, ``high``, ``low``,
            ``close`` (float64, USD per share as traded, not adjusted for
            later splits or dividends) and ``volume`` (int64, shares).
            One row per session and name listed on that session, sorted by
            ``(date, symbol)``.
        """
        ...

    def symbols(self, as_of: date | None = None) -> pd.DataFrame:
        """Reference data on the universe.

        Parameters
        ----------
        as_of : datetime.date, optional
            Show only what is knowable at the close of this date: names
            listed later are absent and a delisting after ``as_of`` shows
            as ``NaT``. ``None`` returns everything the provider knows.

        Returns
        -------
        pandas.DataFrame of shape (n_symbols, 4)
            Columns :data:`SYMBOL_COLUMNS`: ``symbol`` (str), ``sector``
            (str), ``listed_at`` (datetime64[ns], first session with a bar)
            and ``delisted_at`` (datetime64[ns], last session with a bar;
            ``NaT`` while listed). Sorted by ``symbol``.
        """
        ...

    def corporate_actions(
        self,
        start: date,
        end: date,
        symbols: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Splits and cash dividends with an ex-date in ``[start, end]``.

        Parameters
        ----------
        start, end : datetime.date
            First and last ex-date of the range, both inclusive.
        symbols : sequence of str, optional
            Restrict to these tickers; ``None`` means the whole universe.

        Returns
        -------
        pandas.DataFrame of shape (n_actions, 5)
            Columns :data:`ACTION_COLUMNS`: ``symbol`` (str), ``ex_date``
            (datetime64[ns]), ``action_type`` (``"split"`` or
            ``"dividend"``), ``split_ratio`` (float64, new shares per old
            share, e.g. 2.0 for a 2-for-1 and 0.5 for a 1-for-2 reverse
            split; NaN for dividends) and ``dividend_usd`` (float64, cash
            per share; NaN for splits). Sorted by ``(ex_date, symbol)``.
        """
        ...


def empty_frame(dtypes: Mapping[str, str]) -> pd.DataFrame:
    """An empty table with the given columns and dtypes.

    Parameters
    ----------
    dtypes : mapping of str to str
        Column name to dtype, in column order (one of the ``*_DTYPES``).

    Returns
    -------
    pandas.DataFrame of shape (0, len(dtypes))
    """
    return pd.DataFrame({name: pd.Series([], dtype=dtype) for name, dtype in dtypes.items()})


def check_range(start: date, end: date) -> None:
    """Refuse a date range that ends before it starts.

    Raises
    ------
    ProviderError
        ``start`` is after ``end``.
    """
    from quant.exceptions import ProviderError

    if start > end:
        raise ProviderError(f"start {start} is after end {end}")


def bars_frame(bars: pd.DataFrame) -> pd.DataFrame:
    """A venue's daily bars in the form :meth:`MarketDataProvider.bars` returns.

    Parameters
    ----------
    bars : pandas.DataFrame
        At least the columns :data:`BAR_COLUMNS`, ``date`` a session date at
        midnight (datetime-like), prices in USD per share, ``volume`` in shares
        (fractional values allowed, as some venues send them).

    Returns
    -------
    pandas.DataFrame of shape (n_rows, 7)
        Columns :data:`BAR_COLUMNS` with :data:`BAR_DTYPES`, ``volume`` rounded
        to whole shares, sorted by ``(date, symbol)``.
    """
    if bars.empty:
        return empty_frame(BAR_DTYPES)
    frame = bars[list(BAR_COLUMNS)].astype({**BAR_DTYPES, "volume": "float64"})
    frame["volume"] = frame["volume"].round().astype("int64")
    return frame.sort_values(["date", "symbol"], kind="stable").reset_index(drop=True)


def unlisted_symbols_frame(symbols: Sequence[str], sector: str = "Unknown") -> pd.DataFrame:
    """Reference data for providers that cannot list a universe: the given symbols,
    one sector label, listing and delisting dates unknown (NaT).

    Parameters
    ----------
    symbols : sequence of str
    sector : str
        Sector label of every symbol.

    Returns
    -------
    pandas.DataFrame
        Columns ``SYMBOL_COLUMNS``, sorted by symbol.
    """
    import numpy as np

    n = len(symbols)
    frame = pd.DataFrame(
        {
            "symbol": list(symbols),
            "sector": [sector] * n,
            "listed_at": np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]"),
            "delisted_at": np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]"),
        },
        columns=list(SYMBOL_COLUMNS),
    )
    return frame.astype(dict(SYMBOL_DTYPES)).sort_values("symbol").reset_index(drop=True)


def configured_universe(
    provider: str, configured: Sequence[str], symbols: Sequence[str] | None
) -> list[str]:
    """The symbols to fetch from a provider that cannot list a universe.

    ``symbols`` when given (order kept, duplicates dropped), else the configured
    ones (``QUANT_PROVIDER_SYMBOLS``).

    Raises
    ------
    ProviderError
        Neither is given.
    """
    from quant.exceptions import ProviderError

    if symbols is not None:
        return list(dict.fromkeys(symbols))
    if not configured:
        raise ProviderError(
            f"{provider} cannot list a universe: set QUANT_PROVIDER_SYMBOLS or chain a provider "
            "that can (csv, synthetic)"
        )
    return list(configured)


class ConfiguredSymbols:
    """Base of the providers that cannot list a universe (the venues' market data): they
    fetch the symbols asked for, else the configured ones (``QUANT_PROVIDER_SYMBOLS``).

    Attributes
    ----------
    name : str
        The provider's name, in the error when no symbols are known.
    configured_symbols : tuple of str
        The configured universe.
    """

    name: str
    configured_symbols: tuple[str, ...] = ()
    lists_universe: bool = False

    def _universe(self, symbols: Sequence[str] | None) -> list[str]:
        return configured_universe(self.name, self.configured_symbols, symbols)

    def symbols(self, as_of: date | None = None) -> pd.DataFrame:
        """The configured symbols, sector ``"Unknown"``, listing dates unknown (NaT)."""
        from quant.data._csv import UNKNOWN_SECTOR

        return unlisted_symbols_frame(self.configured_symbols, UNKNOWN_SECTOR)
