"""Typed records exchanged with a broker (orders, broker orders, fills, positions, account)
and the broker interface every adapter implements (:class:`Broker`).

Quantities are shares (``qty_shares``; positions are signed, long > 0),
prices and money are USD, timestamps are timezone-aware UTC (``*_at``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable

__all__ = [
    "Account",
    "BatchBroker",
    "Broker",
    "BrokerOrder",
    "CorporateAction",
    "CorporateActionType",
    "Fill",
    "Order",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "Position",
    "TimeInForce",
]

OrderSide = Literal["buy", "sell"]

CorporateActionType = Literal["split", "dividend", "delisting", "dead_symbol"]
"""What happens to a position: a split, a cash dividend, or a closing (the symbol was
delisted, or has had no bar for too many sessions)."""


class OrderType(StrEnum):
    """How the price is set: at the market, or no worse than a limit."""

    MARKET = "market"
    LIMIT = "limit"


class TimeInForce(StrEnum):
    """When an order may execute: ``opg`` the opening auction, ``cls`` the closing
    auction, ``day`` the next auction of either kind that session."""

    DAY = "day"
    OPG = "opg"
    CLS = "cls"


class OrderStatus(StrEnum):
    """Life cycle of an order at the broker; ``open`` and ``partially_filled`` are live."""

    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def is_live(self) -> bool:
        """True while the order can still fill (and can be cancelled)."""
        return self in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """An order to submit.

    Parameters
    ----------
    client_order_id : str
        Deterministic id chosen by the caller (the same order on a rerun has
        the same id; brokers refuse a duplicate).
    symbol : str
    side : {"buy", "sell"}
    qty_shares : float
        Positive whole number of shares.
    order_type : OrderType
    time_in_force : TimeInForce
    limit_price_usd : float or None
        Required for limit orders, forbidden for market orders.
    reduce_only : bool
        The broker fills only as much as shrinks the position (never flips it)
        and cancels the rest.
    strategy : str or None
        Tag of the strategy that produced it.
    """

    client_order_id: str
    symbol: str
    side: OrderSide
    qty_shares: float
    order_type: OrderType = OrderType.MARKET
    time_in_force: TimeInForce = TimeInForce.DAY
    limit_price_usd: float | None = None
    reduce_only: bool = False
    strategy: str | None = None

    def __post_init__(self) -> None:
        if not self.client_order_id:
            raise ValueError("client_order_id must not be empty")
        if not self.symbol:
            raise ValueError("symbol must not be empty")
        if self.side not in ("buy", "sell"):
            raise ValueError(f"side must be 'buy' or 'sell', got {self.side!r}")
        q = self.qty_shares
        if not (q > 0 and math.isfinite(q) and q == int(q)):
            raise ValueError(f"qty_shares must be a positive whole number, got {q!r}")
        if type(self.order_type) is not OrderType:  # a string ("limit") becomes the member
            object.__setattr__(self, "order_type", OrderType(self.order_type))
        if type(self.time_in_force) is not TimeInForce:
            object.__setattr__(self, "time_in_force", TimeInForce(self.time_in_force))
        if self.order_type is OrderType.LIMIT:
            lp = self.limit_price_usd
            if lp is None or not (lp > 0 and math.isfinite(lp)):
                raise ValueError(f"limit_price_usd must be positive for a limit order, got {lp!r}")
        elif self.limit_price_usd is not None:
            raise ValueError("limit_price_usd is only for limit orders")

    @property
    def signed_qty_shares(self) -> float:
        """``qty_shares`` for a buy, ``-qty_shares`` for a sell."""
        return self.qty_shares if self.side == "buy" else -self.qty_shares


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerOrder:
    """An order as the broker holds it."""

    order_id: str
    client_order_id: str
    symbol: str
    side: OrderSide
    qty_shares: float
    filled_qty_shares: float
    status: OrderStatus
    order_type: OrderType
    time_in_force: TimeInForce
    limit_price_usd: float | None
    reduce_only: bool
    strategy: str | None
    submitted_at: datetime
    updated_at: datetime
    status_reason: str | None = None

    @property
    def remaining_qty_shares(self) -> float:
        """Shares still to fill (0 once the order is no longer live)."""
        return self.qty_shares - self.filled_qty_shares if self.status.is_live else 0.0

    @property
    def is_live(self) -> bool:
        return self.status.is_live


@dataclass(frozen=True, slots=True, kw_only=True)
class Fill:
    """One execution."""

    fill_id: str
    order_id: str
    client_order_id: str
    symbol: str
    side: OrderSide
    qty_shares: float
    price_usd: float
    commission_usd: float
    filled_at: datetime

    @property
    def signed_qty_shares(self) -> float:
        return self.qty_shares if self.side == "buy" else -self.qty_shares


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    """A holding: signed shares, average cost and the latest price the broker knows."""

    symbol: str
    qty_shares: float
    avg_price_usd: float
    market_price_usd: float

    @property
    def market_value_usd(self) -> float:
        """Signed value (negative for a short)."""
        return self.qty_shares * self.market_price_usd


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    """Equity (cash + positions at market) and cash, USD."""

    equity_usd: float
    cash_usd: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CorporateAction:
    """A corporate action to apply to an account's position in ``symbol`` on ``session``.

    Attributes
    ----------
    symbol : str
    action_type : CorporateActionType
    session : date
        The session it takes effect on (a split's or dividend's ex-date, a closing's date).
    effective_at : datetime
        UTC: the session's open for splits and dividends (before its opening auction),
        its close for closings (after the auctions).
    split_ratio : float, optional
        Splits: new shares per old share (4.0 for a 4-for-1, 0.25 for a 1-for-4).
    dividend_usd : float, optional
        Dividends: cash per share, USD.
    price_usd : float, optional
        Splits: the price a fractional share is paid at (the last close divided by the
        ratio), USD; closings: the last known price the position is closed at, USD.
    detail : str, optional
        Why (a closing's reason), for the books.
    """

    symbol: str
    action_type: CorporateActionType
    session: date
    effective_at: datetime
    split_ratio: float | None = None
    dividend_usd: float | None = None
    price_usd: float | None = None
    detail: str | None = None

    def __post_init__(self) -> None:
        if self.effective_at.tzinfo is None:
            raise ValueError("effective_at must be timezone-aware (UTC)")
        if self.action_type == "split" and not (
            self.split_ratio is not None and self.split_ratio > 0 and math.isfinite(self.split_ratio)
        ):
            raise ValueError(f"split of {self.symbol} needs a ratio > 0, got {self.split_ratio}")
        if self.action_type == "dividend" and not (
            self.dividend_usd is not None and math.isfinite(self.dividend_usd)
        ):
            raise ValueError(f"dividend of {self.symbol} needs dividend_usd, got {self.dividend_usd}")
        if self.action_type in ("delisting", "dead_symbol") and not (
            self.price_usd is not None and self.price_usd > 0 and math.isfinite(self.price_usd)
        ):
            raise ValueError(
                f"closing of {self.symbol} needs a last price > 0, got {self.price_usd}"
            )


# -- the broker interface -------------------------------------------------------------------
# The broker interface every adapter implements (``sim``, Alpaca, IB).
#
# Stages and the sidecar take a :class:`Broker`; they never import an adapter
# directly. The contract:
#
# - ``submit`` is keyed by the caller's deterministic ``client_order_id``: a
#   second submit with the same id raises :class:`~quant.exceptions.BrokerError`
#   instead of creating a second order. After a timeout, look the order up with
#   ``order_by_client_id`` before submitting again.
# - ``cancel`` and ``cancel_all`` are safe to repeat: cancelling an order that
#   is already filled or cancelled is not an error.
# - Positions are signed shares (long > 0); money is USD; times are UTC.
#
# An adapter that can also place and look up many orders at once (the
# simulator) implements :class:`BatchBroker` as well; the submission stage uses
# it when it is there and goes order by order otherwise.


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
