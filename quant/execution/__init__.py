"""Execution: the broker interface, its records and the built-in simulator.

Stages and the sidecar depend on :class:`Broker` only; adapters (``sim`` here,
Alpaca and IB alongside) implement it.
"""

from quant.execution._broker import Broker
from quant.execution._sim import SimBroker
from quant.execution._types import (
    Account,
    BrokerOrder,
    Fill,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    TimeInForce,
)

__all__ = [
    "Account",
    "Broker",
    "BrokerOrder",
    "Fill",
    "Order",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "Position",
    "SimBroker",
    "TimeInForce",
]
