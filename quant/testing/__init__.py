"""Fakes for tests: Alpaca's HTTP APIs, the IB API gateway, a fixed-table provider.

They are real servers on 127.0.0.1 (a threaded HTTP server; a TCP server
speaking the TWS API wire protocol), so the real client libraries
(alpaca-py, ib_insync / ib_async) are exercised end to end. The venues' fakes
live with their venue (:mod:`quant.venues.alpaca`, :mod:`quant.venues.ibkr`)
and are re-exported here.
"""

from quant.testing.static_provider import StaticProvider
from quant.venues.alpaca import Failure, FakeAlpaca, FakeRequest, FakeResponse
from quant.venues.ibkr import FakeIBConnection, FakeIBGateway

__all__ = [
    "FakeAlpaca",
    "FakeIBConnection",
    "FakeIBGateway",
    "FakeRequest",
    "FakeResponse",
    "Failure",
    "StaticProvider",
]
