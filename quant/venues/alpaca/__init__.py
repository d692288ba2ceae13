"""The Alpaca venue: market data and a trading account through alpaca-py.

:class:`AlpacaProvider` serves raw daily bars and corporate actions (the
``alpaca`` market-data provider); :class:`AlpacaBroker` implements the
:class:`~quant.execution.Broker` protocol on Alpaca's trading API (paper by
default). Both take their credentials from ``APCA_API_KEY_ID`` /
``APCA_API_SECRET_KEY`` unless given, and retry a bounded number of times with
exponential backoff (the constants and helpers they share are in
``_connection``). :class:`FakeAlpaca` is a local fake of both APIs for tests,
served over HTTP so that the real client library is exercised.
"""

from quant.venues.alpaca._broker import AlpacaBroker
from quant.venues.alpaca._connection import (
    KEY_VARIABLE,
    LIVE_HOST,
    RETRYABLE_STATUS,
    SECRET_VARIABLE,
    URL_VARIABLE,
)
from quant.venues.alpaca._data import AlpacaProvider
from quant.venues.alpaca._fake import Failure, FakeAlpaca, FakeRequest, FakeResponse

__all__ = [
    "KEY_VARIABLE",
    "LIVE_HOST",
    "RETRYABLE_STATUS",
    "SECRET_VARIABLE",
    "URL_VARIABLE",
    "AlpacaBroker",
    "AlpacaProvider",
    "Failure",
    "FakeAlpaca",
    "FakeRequest",
    "FakeResponse",
]
