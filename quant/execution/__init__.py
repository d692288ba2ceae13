"""Execution: order generation, broker adapters, idempotent submission, reconciliation.

Stages and the sidecar depend on :class:`Broker` only; adapters implement it:
:class:`SimBroker` (the built-in simulator, the default), :class:`AlpacaBroker`
(alpaca-py) and :class:`IbkrBroker` (ib_async / ib_insync), each from its venue
package under :mod:`quant.venues`, opened by :func:`open_broker`. :func:`choose_broker` encodes the safety rules (backfills
and old dates always fill with the simulator; live trading is refused in
backfills). The DAG's stages are :func:`generate_orders`,
:func:`pretrade_check`, :func:`submit_orders` and :func:`reconcile`, one module each;
what they record goes through :mod:`quant.ledger`.
"""

from quant.execution._check import pretrade_check
from quant.execution._common import DEFAULT_DAG_ID
from quant.execution._generate import generate_orders
from quant.execution._ids import client_order_id, order_namespace
from quant.execution._market import cache_market_inputs
from quant.execution._modes import BROKER_NAMES, DEFAULT_SIM_ACCOUNT, BrokerChoice, choose_broker
from quant.execution._open import open_broker
from quant.execution._orders import OrderPlan, ProposedOrder, build_orders
from quant.execution._reconcile import reconcile
from quant.execution._settle import settle_simulator
from quant.execution._submit import submit_orders
from quant.typing import (
    Account,
    BatchBroker,
    Broker,
    BrokerOrder,
    Fill,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    TimeInForce,
)
from quant.venues.alpaca import AlpacaBroker
from quant.venues.ibkr import IbkrBroker
from quant.venues.sim import SimBroker, rewind_sim_account

__all__ = [
    "BROKER_NAMES",
    "DEFAULT_DAG_ID",
    "DEFAULT_SIM_ACCOUNT",
    "Account",
    "AlpacaBroker",
    "BatchBroker",
    "Broker",
    "BrokerChoice",
    "BrokerOrder",
    "Fill",
    "IbkrBroker",
    "Order",
    "OrderPlan",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "Position",
    "ProposedOrder",
    "SimBroker",
    "TimeInForce",
    "build_orders",
    "cache_market_inputs",
    "choose_broker",
    "client_order_id",
    "generate_orders",
    "open_broker",
    "order_namespace",
    "pretrade_check",
    "reconcile",
    "rewind_sim_account",
    "settle_simulator",
    "submit_orders",
]
