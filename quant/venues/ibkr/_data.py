"""The IB market-data provider (``ibkr``): raw daily TRADES bars from an IB Gateway or TWS.

Uses ``ib_async`` when installed, else ``ib_insync`` (the same API):
``IB.connect(host, port, clientId, readonly=True)`` then one
``reqHistoricalData(Stock(symbol, "SMART", "USD"), ..., barSizeSetting="1 day",
whatToShow="TRADES", useRTH=True)`` per symbol. IB offers no corporate-action
history through its API, so :meth:`IbkrProvider.corporate_actions` is empty:
chain a provider that has them, or adjust downstream from another source.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from types import ModuleType
from typing import Any

import pandas as pd

from quant.data._base import (
    ACTION_DTYPES,
    BAR_COLUMNS,
    BAR_DTYPES,
    configured_universe,
    empty_frame,
    unlisted_symbols_frame,
)
from quant.data._csv import UNKNOWN_SECTOR
from quant.exceptions import ConfigurationError, ProviderError, ProviderUnavailableError
from quant.venues.ibkr._connection import ensure_event_loop, ib_module

__all__ = ["NO_DATA_CODES", "IbkrProvider", "duration_for"]

NO_DATA_CODES: frozenset[int] = frozenset({162, 200})
"""IB error codes meaning "no bars for this contract" (the chain moves on)."""


def duration_for(start: date, end: date) -> str:
    """The IB ``durationStr`` covering ``[start, end]``: days up to a year, else whole years."""
    days = (end - start).days + 1
    if days <= 365:
        return f"{days} D"
    return f"{math.ceil(days / 365)} Y"


class IbkrProvider:
    """Daily TRADES bars from the IB API.

    Parameters
    ----------
    symbols : sequence of str, optional
        The universe when none is asked for (``QUANT_PROVIDER_SYMBOLS``).
    host : str, default "127.0.0.1"
    port : int, default 4002
        4002 = IB Gateway paper, 4001 = Gateway live, 7497/7496 = TWS.
    client_id : int, default 17
        API client id of the market-data connection (distinct from the
        broker adapter's).
    exchange : str, default "XNYS"
        Calendar of the sessions (informational).
    currency, route : str, default "USD" and "SMART"
        Contract currency and routing exchange of the ``Stock`` contracts.
    connect_timeout_s, request_timeout_s : float, default 10 and 60
        Timeouts of the connection and of each historical-data request.
    """

    name: str = "ibkr"
    lists_universe: bool = False

    def __init__(
        self,
        symbols: Sequence[str] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 4002,
        client_id: int = 17,
        exchange: str = "XNYS",
        currency: str = "USD",
        route: str = "SMART",
        connect_timeout_s: float = 10.0,
        request_timeout_s: float = 60.0,
    ) -> None:
        if not 1 <= int(port) <= 65535:
            raise ConfigurationError(f"QUANT_IB_PORT: {port} is not a TCP port")
        self.configured_symbols: tuple[str, ...] = tuple(symbols)
        self.host = host
        self.port = int(port)
        self.client_id = int(client_id)
        self.exchange = exchange
        self.currency = currency
        self.route = route
        self.connect_timeout_s = connect_timeout_s
        self.request_timeout_s = request_timeout_s

    def __repr__(self) -> str:
        return f"IbkrProvider(host={self.host!r}, port={self.port}, client_id={self.client_id})"

    def _universe(self, symbols: Sequence[str] | None) -> list[str]:
        return configured_universe("ibkr", self.configured_symbols, symbols)

    def _connect(self, ib_mod: ModuleType) -> Any:
        ensure_event_loop()
        ib = ib_mod.IB()
        ib.RaiseRequestErrors = True
        try:
            ib.connect(
                self.host,
                self.port,
                clientId=self.client_id,
                timeout=self.connect_timeout_s,
                readonly=True,
            )
        except (OSError, TimeoutError) as exc:
            ib.disconnect()
            raise ProviderUnavailableError(
                f"ibkr: cannot connect to the IB API at {self.host}:{self.port} "
                f"(client id {self.client_id}): {exc!r}"
            ) from None
        return ib

    # ------------------------------------------------------------------ public API

    def bars(
        self,
        start: date,
        end: date,
        symbols: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Raw daily TRADES bars; see :meth:`quant.data.MarketDataProvider.bars`.

        A symbol IB does not know (error 200) or has no data for (162) is
        absent from the result.

        Raises
        ------
        ProviderUnavailableError
            If the gateway cannot be reached or a request times out.
        ProviderError
            For any other error IB answers.
        """
        if start > end:
            raise ProviderError(f"start {start} is after end {end}")
        wanted = self._universe(symbols)
        ib_mod = ib_module()
        ib = self._connect(ib_mod)
        rows: list[tuple] = []
        try:
            for symbol in wanted:
                contract = ib_mod.Stock(symbol, self.route, self.currency)
                try:
                    bars = ib.reqHistoricalData(
                        contract,
                        endDateTime=f"{end:%Y%m%d} 23:59:59 US/Eastern",
                        durationStr=duration_for(start, end),
                        barSizeSetting="1 day",
                        whatToShow="TRADES",
                        useRTH=True,
                        formatDate=1,
                        timeout=self.request_timeout_s,
                    )
                except ib_mod.RequestError as exc:
                    if exc.code in NO_DATA_CODES:
                        continue
                    raise ProviderError(
                        f"ibkr: historical data for {symbol} refused: {exc.code} {exc.message}"
                    ) from None
                except TimeoutError:
                    raise ProviderUnavailableError(
                        f"ibkr: historical data for {symbol} timed out after "
                        f"{self.request_timeout_s} s"
                    ) from None
                for bar in bars or []:
                    day = bar.date if isinstance(bar.date, date) else pd.Timestamp(bar.date).date()
                    if start <= day <= end:
                        rows.append(
                            (day, symbol, bar.open, bar.high, bar.low, bar.close, bar.volume)
                        )
        finally:
            ib.disconnect()
        if not rows:
            return empty_frame(BAR_DTYPES)
        frame = pd.DataFrame(rows, columns=list(BAR_COLUMNS))
        frame["date"] = pd.to_datetime(frame["date"])
        frame["volume"] = frame["volume"].astype("float64").round()
        frame = frame.astype(dict(BAR_DTYPES))
        return frame.sort_values(["date", "symbol"], kind="stable").reset_index(drop=True)

    def symbols(self, as_of: date | None = None) -> pd.DataFrame:
        """The configured symbols, sector ``"Unknown"``, listing dates unknown (NaT)."""
        return unlisted_symbols_frame(self.configured_symbols, UNKNOWN_SECTOR)

    def corporate_actions(
        self,
        start: date,
        end: date,
        symbols: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Always empty: the IB API has no corporate-action history."""
        if start > end:
            raise ProviderError(f"start {start} is after end {end}")
        return empty_frame(ACTION_DTYPES)
