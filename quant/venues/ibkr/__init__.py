"""The Interactive Brokers venue: market data and an account through an IB Gateway or TWS.

:class:`IbkrProvider` serves raw daily TRADES bars (the ``ibkr`` market-data
provider); :class:`IbkrBroker` implements the :class:`~quant.execution.Broker`
protocol over the TWS API, the pipeline's client order id travelling as the
order's ``orderRef``. Both use ``ib_async`` when installed, else ``ib_insync``
(:func:`ib_module`); the ports of paper and live trading are
:data:`PAPER_PORTS` and :data:`LIVE_PORTS`. :class:`FakeIBGateway` is a local
fake of the gateway for tests, speaking the TWS API wire protocol (message ids
:class:`IN` and :class:`OUT`) so that the real client library is exercised.
"""

from quant.venues.ibkr._broker import IbkrBroker
from quant.venues.ibkr._connection import LIVE_PORTS, PAPER_PORTS, ib_module
from quant.venues.ibkr._data import NO_DATA_CODES, IbkrProvider, duration_for
from quant.venues.ibkr._fake import IN, OUT, FakeIBConnection, FakeIBGateway

__all__ = [
    "IN",
    "LIVE_PORTS",
    "NO_DATA_CODES",
    "OUT",
    "PAPER_PORTS",
    "FakeIBConnection",
    "FakeIBGateway",
    "IbkrBroker",
    "IbkrProvider",
    "duration_for",
    "ib_module",
]
