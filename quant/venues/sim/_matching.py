"""The simulator's matching model: one auction computed in memory, no database.

An auction takes the account's cash and positions and its resting orders (by
submission time) and fills each order as far as its limit, the reduce-only
rule and the participation cap allow, at the auction price moved against it
by the slippage, with a per-share commission. What it computes (the orders'
new fill state, the fills, the positions and the cash) is written back by the
simulator's store in one statement.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from quant.ledger import next_position
from quant.typing import Fill, OrderStatus

__all__ = ["_Auction", "_Resting"]


class _Resting(NamedTuple):
    """A live order as an auction needs it (columns of ``ops.sim_orders``)."""

    order_id: str
    client_order_id: str
    symbol: str
    side: str
    qty_shares: float
    filled_qty_shares: float
    order_type: str
    limit_price_usd: float | None
    reduce_only: bool


class _Auction:
    """One auction computed in memory: cash, positions and capacity evolve order by order.

    ``order_updates`` holds the new fill state of every order touched
    ``(order_id, filled_qty_shares, status, status_reason)``, ``fill_rows`` the fills
    in execution order ``(order_id, client_order_id, symbol, side, qty_shares,
    price_usd, commission_usd)`` (the caller puts the fill id first), ``book`` the
    positions ``symbol -> (qty_shares, avg_price_usd)``, ``marks`` the auction price
    of every symbol that traded and ``cash`` the account's cash after the fills, USD.

    Parameters
    ----------
    slippage_bps : float
        Fill price = auction price x (1 + bps/10^4) for buys, (1 - bps/10^4) for sells.
    commission_per_share_usd : float
    prices : mapping of str to float
        Auction price per symbol, USD.
    capacity : dict of str to float, optional
        Shares that may still fill per symbol (``None``: no cap).
    book : dict of str to tuple of float
        The account's positions before the auction.
    cash_usd : float
    at : datetime
        UTC time of the auction.
    """

    def __init__(
        self,
        *,
        slippage_bps: float,
        commission_per_share_usd: float,
        prices: Mapping[str, float],
        capacity: dict[str, float] | None,
        book: dict[str, tuple[float, float]],
        cash_usd: float,
        at: datetime,
    ) -> None:
        self.bps = slippage_bps / 10_000.0
        self.commission_per_share = commission_per_share_usd
        self.prices = prices
        self.capacity = capacity
        self.book = book
        self.had_rows = set(book)  # symbols with a row in ops.sim_positions
        self.cash = cash_usd
        self.at = at
        self.marks: dict[str, float] = {}
        self.order_updates: list[tuple[str, float, str, str | None]] = []
        self.fill_rows: list[tuple[Any, ...]] = []
        self.fills: list[Fill] = []

    def execute(self, order: _Resting) -> None:
        """Fill what this order can fill now (limit, reduce-only, participation cap)."""
        price = self.prices.get(order.symbol)
        if price is None or not (price > 0 and math.isfinite(price)):
            return
        is_buy = order.side == "buy"
        is_limit = order.order_type == "limit"
        if is_limit:
            limit = order.limit_price_usd or 0.0
            if (is_buy and price > limit) or (not is_buy and price < limit):
                return
        qty = order.qty_shares - order.filled_qty_shares
        old_qty, old_avg = self.book.get(order.symbol, (0.0, 0.0))
        if order.reduce_only:
            shrinkable = (
                abs(old_qty) if (old_qty > 0 and not is_buy) or (old_qty < 0 and is_buy) else 0.0
            )
            if shrinkable <= 0:
                self.order_updates.append(
                    (
                        order.order_id,
                        order.filled_qty_shares,
                        str(OrderStatus.CANCELLED),
                        "reduce_only: no position to reduce",
                    )
                )
                return
            qty = min(qty, shrinkable)
        if self.capacity is not None:
            qty = min(qty, self.capacity.get(order.symbol, 0.0))
            if qty <= 0:
                return
            self.capacity[order.symbol] -= qty
        fill_price = price * (1 + self.bps) if is_buy else price * (1 - self.bps)
        if is_limit:
            limit = order.limit_price_usd or fill_price
            fill_price = min(fill_price, limit) if is_buy else max(fill_price, limit)
        signed = qty if is_buy else -qty
        commission = qty * self.commission_per_share
        filled = order.filled_qty_shares + qty
        if filled >= order.qty_shares:
            status, reason = OrderStatus.FILLED, None
        elif order.reduce_only and abs(old_qty + signed) == 0:
            status, reason = OrderStatus.CANCELLED, "reduce_only: position closed"
        else:
            status, reason = OrderStatus.PARTIALLY_FILLED, None
        self.order_updates.append((order.order_id, filled, str(status), reason))
        self.cash = self.cash - signed * fill_price - commission
        self.book[order.symbol] = next_position(old_qty, old_avg, signed, fill_price)
        self.marks[order.symbol] = price
        self.fill_rows.append(
            (
                order.order_id,
                order.client_order_id,
                order.symbol,
                order.side,
                qty,
                fill_price,
                commission,
            )
        )
