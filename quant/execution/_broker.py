"""The broker interface every adapter implements (``sim``, Alpaca, IB).

Stages and the sidecar take a :class:`Broker`; they never import an adapter
directly. The contract:

- ``submit`` is keyed by the caller's deterministic ``client_order_id``: a
  second submit with the same id raises :class:`~quant.exceptions.BrokerError`
  instead of creating a second order. After a timeout, look the order up with
  ``order_by_client_id`` before submitting again.
- ``cancel`` and ``cancel_all`` are safe to repeat: cancelling an order that
  is already filled or cancelled is not an error.
- Positions are signed shares (long > 0); money is USD; times are UTC.

An adapter that can also place and look up many orders at once (the
simulator) implements :class:`BatchBroker` as well; the submission stage uses
it when it is there and goes order by order otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from quant.typing import Account, BrokerOrder, Fill, Order, Position

__all__ = ["BatchBroker", "Broker"]


@runtime_checkable
class Broker(Protocol):
    """What the pipeline and the sidecar need from a broker account."""

    name: str
    """Short adapter name, e.g. ``"sim"``, ``"alpaca"``."""

    def account(self) -> Account:
        """Equity and cash of the account."""
        ...

    def positions(self) -> list[Position]:
        """Every non-zero position."""
        ...

    def open_orders(self) -> list[BrokerOrder]:
        """Every live order (open or partially filled)."""
        ...

    def order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        """The order submitted with this client order id, in any status, or None."""
        ...

    def submit(self, order: Order) -> BrokerOrder:
        """Place an order; raises BrokerError when refused (duplicate id, bad order)."""
        ...

    def cancel(self, order_id: str) -> bool:
        """Cancel one order; True when it was live and is now cancelled."""
        ...

    def cancel_all(self) -> int:
        """Cancel every live order; returns how many were cancelled."""
        ...

    def fills_since(self, since: datetime) -> list[Fill]:
        """Executions at or after ``since`` (UTC), oldest first."""
        ...


@runtime_checkable
class BatchBroker(Protocol):
    """Batch calls a :class:`Broker` may offer besides the one-order ones."""

    def submit_many(self, orders: Sequence[Order]) -> list[BrokerOrder]:
        """Place every order or none: raises BrokerError naming the refused
        client order ids (duplicates in the batch or at the broker) and places nothing."""
        ...

    def orders_by_client_ids(self, client_order_ids: Sequence[str]) -> dict[str, BrokerOrder]:
        """The orders submitted with these client order ids, keyed by id (absent: not there)."""
        ...

    def cancel_many(self, order_ids: Sequence[str]) -> int:
        """Cancel several orders; returns how many were live and are now cancelled."""
        ...
