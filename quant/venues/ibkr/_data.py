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
    ConfiguredSymbols,
    bars_frame,
    check_range,
    empty_frame,
)
from quant.exceptions import ConfigurationError, ProviderError, ProviderUnavailableError
from quant.venues.ibkr._connection import connect, ensure_event_loop, ib_module

__all__ = ["NO_DATA_CODES", "IbkrProvider", "duration_for"]

NO_DATA_CODES: frozenset[int] = frozenset({162, 200})
"""IB error codes meaning "no bars for this contract" (the chain moves on)."""


def duration_for(start: date, end: date) -> str:
    """The IB ``durationStr`` covering ``[start, end]``: days up to a year, else whole years."""
    days = (end - start).days + 1
    if days <= 365:
        return f"{days} D"
    return f"{math.ceil(days / 365)} Y"


class IbkrProvider(ConfiguredSymbols):
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

    def _connect(self, ib_mod: ModuleType) -> Any:
        ensure_event_loop()
        try:
            return connect(
                ib_mod,
                self.host,
                self.port,
                client_id=self.client_id,
                timeout_s=self.connect_timeout_s,
                readonly=True,
            )
        except (OSError, TimeoutError) as exc:
            raise ProviderUnavailableError(
                f"ibkr: cannot connect to the IB API at {self.host}:{self.port} "
                f"(client id {self.client_id}): {exc!r}"
            ) from None

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
        check_range(start, end)
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
        return bars_frame(pd.DataFrame(rows, columns=list(BAR_COLUMNS)))

    def corporate_actions(
        self,
        start: date,
        end: date,
        symbols: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Always empty: the IB API has no corporate-action history."""
        check_range(start, end)
        return empty_frame(ACTION_DTYPES)
