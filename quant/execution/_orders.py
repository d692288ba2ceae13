"""Order generation, pure: target weights and the account in, a list of orders out.

Steps (quantities in shares, money in USD):

1. target shares = weight x equity / reference price, rounded toward zero to
   the symbol's lot size (whole shares by default);
2. order = target - current position; a symbol held but without a weight is
   closed (target 0), selling every share even an odd lot;
3. each order is capped at ``max_adv_participation`` x average daily volume;
4. orders whose notional is under ``min_notional_usd`` are dropped;
5. sells come first; buys share the cash left after the sells (cash + sell
   proceeds - buffer), scaled down proportionally when they would spend more,
   then rounded down to lots (and dropped again if now too small).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["OrderPlan", "ProposedOrder", "build_orders"]

_EPS = 1e-9


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposedOrder:
    """One generated order, before the pre-trade check."""

    symbol: str
    side: Literal["buy", "sell"]
    qty_shares: float
    ref_price_usd: float
    target_weight: float
    target_qty_shares: float
    current_qty_shares: float
    adv_capped: bool = False
    cash_capped: bool = False

    @property
    def notional_usd(self) -> float:
        return self.qty_shares * self.ref_price_usd

    @property
    def signed_qty_shares(self) -> float:
        return self.qty_shares if self.side == "buy" else -self.qty_shares


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderPlan:
    """The orders (sells first, then buys, each by symbol) and what was dropped and why."""

    orders: list[ProposedOrder]
    dropped: list[dict[str, Any]] = field(default_factory=list)
    cash_available_for_buys_usd: float = 0.0
    buy_scale: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "orders": [asdict(o) | {"notional_usd": o.notional_usd} for o in self.orders],
            "dropped": list(self.dropped),
            "cash_available_for_buys_usd": self.cash_available_for_buys_usd,
            "buy_scale": self.buy_scale,
        }


def _to_lot(qty: float, lot: int) -> float:
    """``qty`` (>= 0) rounded down to a multiple of ``lot``."""
    return float(math.floor(qty / lot + _EPS) * lot)


def _toward_zero(qty: float, lot: int) -> float:
    return math.copysign(_to_lot(abs(qty), lot), qty) if qty else 0.0


def build_orders(
    weights: Mapping[str, float],
    *,
    equity_usd: float,
    cash_usd: float,
    positions: Mapping[str, float],
    prices: Mapping[str, float],
    adv_shares: Mapping[str, float] | None = None,
    lot_sizes: Mapping[str, int] | None = None,
    min_notional_usd: float = 100.0,
    max_adv_participation: float = 0.08,
    cash_buffer_usd: float = 0.0,
) -> OrderPlan:
    """Orders that move ``positions`` toward ``weights``.

    Parameters
    ----------
    weights : mapping of str to float
        Target weight per symbol, fraction of equity (negative = short).
    equity_usd, cash_usd : float
        The account's equity and cash, USD.
    positions : mapping of str to float
        Current signed shares per symbol.
    prices : mapping of str to float
        Reference price per symbol, USD (the session's close).
    adv_shares : mapping of str to float, optional
        Average daily volume per symbol, shares; ``None`` switches the cap off;
        a symbol missing from it cannot be traded.
    lot_sizes : mapping of str to int, optional
        Order sizes are multiples of this per symbol (default 1 share).
    min_notional_usd : float
        Smaller orders are dropped.
    max_adv_participation : float
        Largest order as a fraction of ``adv_shares``.
    cash_buffer_usd : float
        Cash buys leave unspent.

    Returns
    -------
    OrderPlan
    """
    lot_sizes = lot_sizes or {}
    weights = {s.upper(): float(w) for s, w in weights.items()}
    positions = {s.upper(): float(q) for s, q in positions.items() if q != 0}
    prices = {s.upper(): float(p) for s, p in prices.items()}
    adv = None if adv_shares is None else {s.upper(): float(v) for s, v in adv_shares.items()}
    dropped: list[dict[str, Any]] = []
    sells: list[ProposedOrder] = []
    buys: list[ProposedOrder] = []
    for symbol in sorted(set(weights) | set(positions)):
        weight = weights.get(symbol, 0.0)
        current = positions.get(symbol, 0.0)
        if weight == 0.0 and current == 0.0:
            continue
        price = prices.get(symbol)
        if price is None or not (price > 0 and math.isfinite(price)):
            dropped.append({"symbol": symbol, "reason": "no_price", "target_weight": weight})
            continue
        lot = int(lot_sizes.get(symbol, 1))
        target = _toward_zero(weight * equity_usd / price, lot) if weight else 0.0
        delta = target - current
        if abs(delta) < _EPS:
            continue
        qty = abs(delta) if target == 0.0 else _to_lot(abs(delta), lot)
        if qty <= 0:
            continue
        adv_capped = False
        if adv is not None:
            volume = adv.get(symbol)
            if volume is None or not (volume > 0 and math.isfinite(volume)):
                dropped.append({"symbol": symbol, "reason": "no_volume", "qty_shares": qty})
                continue
            cap = _to_lot(max_adv_participation * volume, lot)
            if qty > cap:
                qty, adv_capped = cap, True
        if qty * price < min_notional_usd or qty <= 0:
            dropped.append(
                {
                    "symbol": symbol,
                    "reason": "below_min_notional",
                    "qty_shares": qty,
                    "notional_usd": qty * price,
                }
            )
            continue
        order = ProposedOrder(
            symbol=symbol,
            side="buy" if delta > 0 else "sell",
            qty_shares=qty,
            ref_price_usd=price,
            target_weight=weight,
            target_qty_shares=target,
            current_qty_shares=current,
            adv_capped=adv_capped,
        )
        (buys if order.side == "buy" else sells).append(order)
    proceeds = sum(o.notional_usd for o in sells)
    available = max(cash_usd + proceeds - cash_buffer_usd, 0.0)
    wanted = sum(o.notional_usd for o in buys)
    scale = 1.0
    if wanted > available + _EPS:
        scale = available / wanted if wanted > 0 else 0.0
        scaled: list[ProposedOrder] = []
        for o in buys:
            lot = int(lot_sizes.get(o.symbol, 1))
            qty = _to_lot(o.qty_shares * scale, lot)
            if qty <= 0 or qty * o.ref_price_usd < min_notional_usd:
                dropped.append(
                    {
                        "symbol": o.symbol,
                        "reason": "cash",
                        "qty_shares": qty,
                        "notional_usd": qty * o.ref_price_usd,
                    }
                )
                continue
            scaled.append(
                ProposedOrder(
                    symbol=o.symbol,
                    side="buy",
                    qty_shares=qty,
                    ref_price_usd=o.ref_price_usd,
                    target_weight=o.target_weight,
                    target_qty_shares=o.target_qty_shares,
                    current_qty_shares=o.current_qty_shares,
                    adv_capped=o.adv_capped,
                    cash_capped=True,
                )
            )
        buys = scaled
    return OrderPlan(
        orders=sells + buys,
        dropped=dropped,
        cash_available_for_buys_usd=available,
        buy_scale=scale,
    )
