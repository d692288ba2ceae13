"""The venues: one package per place orders go and market data comes from.

Each venue keeps its pieces side by side: ``sim`` (the built-in simulator:
broker, store and matching), ``alpaca`` and ``ibkr`` (market-data provider,
broker adapter, their connection helpers and constants, and a fake server for
tests). What the adapters share sits here: the bounded retry with backoff
(``_retry``) and the fake servers' life cycle (``_fake_server``). Venues build
on :mod:`quant.typing`, :mod:`quant.exceptions`, :mod:`quant.ledger` (position
math) and the provider contract of :mod:`quant.data`; the execution stages use
them through the :class:`~quant.execution.Broker` protocol.
"""

from quant.venues.alpaca import AlpacaBroker, AlpacaProvider
from quant.venues.ibkr import IbkrBroker, IbkrProvider
from quant.venues.sim import SimBroker, rewind_sim_account

__all__ = [
    "AlpacaBroker",
    "AlpacaProvider",
    "IbkrBroker",
    "IbkrProvider",
    "SimBroker",
    "rewind_sim_account",
]
