"""The Alpaca market-data provider: raw daily bars and corporate actions through alpaca-py.

Bars come from ``StockHistoricalDataClient.get_stock_bars`` (``1Day``,
``adjustment=raw``, the configured feed), corporate actions from
``CorporateActionsClient.get_corporate_actions`` (forward and reverse splits,
cash dividends). Credentials are read from ``APCA_API_KEY_ID`` and
``APCA_API_SECRET_KEY`` and never logged.

Retries: every HTTP request (each page of a paginated answer) is retried on
429 and 5xx and on connection errors, with exponential backoff (honouring
``Retry-After``), at most ``max_attempts`` times; then
:class:`~quant.exceptions.ProviderUnavailableError` says what failed. The
SDK's own 429/504 retry (3 more attempts, fixed 3 s sleeps) is switched off
so the bound is ours alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from quant.data._base import (
    ACTION_COLUMNS,
    ACTION_DTYPES,
    BAR_DTYPES,
    ConfiguredSymbols,
    bars_frame,
    check_range,
    empty_frame,
)
from quant.exceptions import ConfigurationError, ProviderError, ProviderUnavailableError
from quant.venues._retry import Backoff
from quant.venues.alpaca._connection import (
    KEY_VARIABLE,
    SECRET_VARIABLE,
    attempt_request,
    bounded,
    credentials,
)

__all__ = ["AlpacaProvider"]


def _retrying_client(base: type, *, name: str) -> type:
    """A subclass of an alpaca-py REST client whose ``get`` retries with backoff."""

    class _Client(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, retry: Backoff, timeout_s: float, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            bounded(self, timeout_s)  # a timeout on every request; the SDK's retry off
            self._backoff = retry  # not _retry: the SDK's own retry count

        def get(self, path: str, data: Any = None, **kwargs: Any) -> Any:
            from alpaca.common.exceptions import APIError

            send = super().get
            try:
                return self._backoff.run(
                    lambda: attempt_request(lambda: send(path, data, **kwargs)),
                    lambda last: ProviderUnavailableError(
                        f"alpaca: GET {path} failed {self._backoff.max_attempts} times "
                        f"(last: {last}); giving up"
                    ),
                )
            except APIError as exc:
                raise ProviderError(
                    f"alpaca: GET {path} answered HTTP {exc.status_code}: {_short(str(exc))}"
                ) from None

    _Client.__name__ = _Client.__qualname__ = f"Retrying{name}"
    return _Client


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


class AlpacaProvider(ConfiguredSymbols):
    """Daily bars and corporate actions from Alpaca's market-data API.

    Parameters
    ----------
    symbols : sequence of str, optional
        The universe when none is asked for (``QUANT_PROVIDER_SYMBOLS``);
        Alpaca has no sector data, so :meth:`symbols` lists these with
        sector ``"Unknown"``.
    data_url : str, optional
        Base URL of the data API (``QUANT_ALPACA_DATA_URL``); ``None`` is
        Alpaca's own (``https://data.alpaca.markets``).
    feed : str, default "iex"
        Stock data feed (``QUANT_ALPACA_FEED``): ``iex`` (free), ``sip``, ...
    exchange : str, default "XNYS"
        Calendar whose time zone turns bar timestamps into session dates.
    api_key, secret_key : str, optional
        Default to ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY``.
    max_attempts : int, default 5
        Attempts per HTTP request before giving up.
    backoff_s, max_backoff_s : float, default 0.5 and 8.0
        First wait between attempts, doubled each time up to the maximum.
    symbols_per_request : int, default 100
        Symbols per bars/actions request (each request is paginated).
    timeout_s : float, default 30
        Timeout of one HTTP request (connect and read), seconds; a timeout is
        retried like a 5xx.
    sleep : callable, default time.sleep
        How to wait (tests pass a recorder).

    Raises
    ------
    ConfigurationError
        If the credentials are missing or a parameter is out of range.
    """

    name: str = "alpaca"

    def __init__(
        self,
        symbols: Sequence[str] = (),
        *,
        data_url: str | None = None,
        feed: str = "iex",
        exchange: str = "XNYS",
        api_key: str | None = None,
        secret_key: str | None = None,
        max_attempts: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        symbols_per_request: int = 100,
        timeout_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from alpaca.data.enums import DataFeed
        from alpaca.data.historical.corporate_actions import CorporateActionsClient
        from alpaca.data.historical.stock import StockHistoricalDataClient

        key, secret = credentials(api_key, secret_key)
        if not key or not secret:
            raise ConfigurationError(
                f"the alpaca provider needs {KEY_VARIABLE} and {SECRET_VARIABLE} in the environment"
            )
        if timeout_s <= 0:
            raise ConfigurationError("alpaca timeout_s must be > 0")
        if max_attempts < 1 or backoff_s < 0 or max_backoff_s < backoff_s:
            raise ConfigurationError(
                "alpaca retries: max_attempts must be >= 1 and 0 <= backoff_s <= max_backoff_s"
            )
        if symbols_per_request < 1:
            raise ConfigurationError("alpaca symbols_per_request must be >= 1")
        try:
            self.feed = DataFeed(feed)
        except ValueError:
            raise ConfigurationError(f"QUANT_ALPACA_FEED: unknown feed {feed!r}") from None
        self.configured_symbols: tuple[str, ...] = tuple(symbols)
        self.data_url = data_url
        self.exchange = exchange
        self.symbols_per_request = symbols_per_request
        retry = {
            "retry": Backoff(
                max_attempts=max_attempts,
                backoff_s=backoff_s,
                max_backoff_s=max_backoff_s,
                sleep=sleep,
            ),
            "timeout_s": timeout_s,
        }
        bars_client = _retrying_client(StockHistoricalDataClient, name="StockHistoricalDataClient")
        actions_client = _retrying_client(CorporateActionsClient, name="CorporateActionsClient")
        self._bars_client = bars_client(key, secret, raw_data=True, url_override=data_url, **retry)
        self._actions_client = actions_client(
            key, secret, raw_data=True, url_override=data_url, **retry
        )

    def __repr__(self) -> str:
        return f"AlpacaProvider(feed={self.feed.value!r}, data_url={self.data_url!r})"

    def _chunks(self, symbols: list[str]) -> list[list[str]]:
        size = self.symbols_per_request
        return [symbols[i : i + size] for i in range(0, len(symbols), size)]

    # ------------------------------------------------------------------ public API

    def bars(
        self,
        start: date,
        end: date,
        symbols: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Raw daily bars; see :meth:`quant.data.MarketDataProvider.bars`.

        Raises
        ------
        ProviderUnavailableError
            If a request keeps failing with 429/5xx past the retry bound.
        ProviderError
            For any other refusal (bad request, authentication).
        """
        from alpaca.data.enums import Adjustment
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame

        check_range(start, end)
        wanted = self._universe(symbols)
        frames = []
        for chunk in self._chunks(wanted):
            request = StockBarsRequest(
                symbol_or_symbols=chunk,
                timeframe=TimeFrame.Day,
                start=datetime.combine(start, datetime.min.time()),
                # bars are stamped at midnight New York (04:00/05:00 UTC): cover the end date
                end=datetime.combine(end + timedelta(days=1), datetime.min.time()),
                adjustment=Adjustment.RAW,
                feed=self.feed,
            )
            raw = self._bars_client.get_stock_bars(request)
            frames.extend(
                _bars_frame(symbol, items) for symbol, items in (raw or {}).items() if items
            )
        if not frames:
            return empty_frame(BAR_DTYPES)
        bars = pd.concat(frames, ignore_index=True)
        from quant.calendar import get_calendar

        tz = get_calendar(self.exchange).tz
        stamps = pd.to_datetime(bars["t"], utc=True).dt.tz_convert(tz)
        bars["date"] = stamps.dt.tz_localize(None).dt.normalize().astype("datetime64[ns]")
        lo, hi = np.datetime64(start, "ns"), np.datetime64(end, "ns")
        return bars_frame(bars.loc[(bars["date"] >= lo) & (bars["date"] <= hi)])

    def corporate_actions(
        self,
        start: date,
        end: date,
        symbols: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Splits (forward and reverse) and cash dividends with an ex-date in ``[start, end]``.

        ``split_ratio`` is ``new_rate / old_rate``; several cash dividends of
        a symbol on one ex-date (regular plus special) are summed.
        """
        from alpaca.data.enums import CorporateActionsType
        from alpaca.data.requests import CorporateActionsRequest

        check_range(start, end)
        wanted = self._universe(symbols)
        rows: list[dict[str, Any]] = []
        types = [
            CorporateActionsType.FORWARD_SPLIT,
            CorporateActionsType.REVERSE_SPLIT,
            CorporateActionsType.CASH_DIVIDEND,
        ]
        for chunk in self._chunks(wanted):
            request = CorporateActionsRequest(symbols=chunk, types=types, start=start, end=end)
            raw = self._actions_client.get_corporate_actions(request) or {}
            for kind in ("forward_splits", "reverse_splits"):
                for item in raw.get(kind, []):
                    rows.append(
                        {
                            "symbol": item["symbol"],
                            "ex_date": item["ex_date"],
                            "action_type": "split",
                            "split_ratio": float(item["new_rate"]) / float(item["old_rate"]),
                            "dividend_usd": np.nan,
                        }
                    )
            for item in raw.get("cash_dividends", []):
                rows.append(
                    {
                        "symbol": item["symbol"],
                        "ex_date": item["ex_date"],
                        "action_type": "dividend",
                        "split_ratio": np.nan,
                        "dividend_usd": float(item["rate"]),
                    }
                )
        if not rows:
            return empty_frame(ACTION_DTYPES)
        frame = pd.DataFrame(rows, columns=list(ACTION_COLUMNS))
        frame["ex_date"] = pd.to_datetime(frame["ex_date"], format="%Y-%m-%d")
        frame = frame.loc[frame["symbol"].isin(wanted)]
        frame = frame.groupby(["symbol", "ex_date", "action_type"], as_index=False).agg(
            split_ratio=("split_ratio", lambda s: s.prod(min_count=1)),
            dividend_usd=("dividend_usd", lambda s: s.sum(min_count=1)),
        )
        frame = frame[list(ACTION_COLUMNS)].astype(dict(ACTION_DTYPES))
        return frame.sort_values(["ex_date", "symbol"], kind="stable").reset_index(drop=True)


def _bars_frame(symbol: str, items: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(items, columns=["t", "o", "h", "l", "c", "v"])
    frame = frame.rename(
        columns={"o": "open", "h": "high", "l": "low", "c": "close", "v": "volume"}
    )
    frame["symbol"] = symbol
    return frame
