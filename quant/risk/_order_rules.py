"""Order-level pre-trade rules: facts about the order alone (quantity, price, symbol, id,
rate, overrides)."""

from __future__ import annotations

from quant.risk._codes import ReasonCode
from quant.risk._context import RiskContext
from quant.risk._rule import Rule
from quant.risk._types import Denial, RiskOrder

__all__ = [
    "DuplicateClientOrderId",
    "MaxNotionalPerOrder",
    "PriceBand",
    "PriceSanity",
    "QuantitySanity",
    "RateLimit",
    "RestrictedSymbol",
    "StalePrice",
    "StrategyOverride",
    "SymbolOverride",
    "UnknownSymbol",
]


# -- order-level ---------------------------------------------------------------------------
class QuantitySanity(Rule):
    """Quantity must be positive, finite, whole, and a multiple of the lot size."""

    __slots__ = ()
    name = "quantity"
    family = "order"
    codes = (ReasonCode.INVALID_QUANTITY,)

    def check(self, order: RiskOrder, ctx: RiskContext) -> Denial | None:
        if order.qty_valid:
            return None
        return Denial(
            ReasonCode.INVALID_QUANTITY,
            self.name,
            {"qty": order.qty, "lot_size": ctx.limits.lot_size},
        )


class PriceSanity(Rule):
    """Price must be positive and finite."""

    __slots__ = ()
    name = "price"
    family = "order"
    codes = (ReasonCode.INVALID_PRICE,)

    def check(self, order: RiskOrder, ctx: RiskContext) -> Denial | None:
        if order.price_valid:
            return None
        return Denial(ReasonCode.INVALID_PRICE, self.name, {"price": order.price})


class UnknownSymbol(Rule):
    """The symbol must be in the tradable universe."""

    __slots__ = ()
    name = "unknown_symbol"
    family = "order"
    codes = (ReasonCode.UNKNOWN_SYMBOL,)

    def check(self, order: RiskOrder, ctx: RiskContext) -> Denial | None:
        if order.sector is not None:
            return None
        return Denial(
            ReasonCode.UNKNOWN_SYMBOL,
            self.name,
            {"symbol": order.symbol, "universe_size": len(ctx.universe)},
        )


class RestrictedSymbol(Rule):
    """The symbol must not be on the restricted list (``risk.restricted_symbols``)."""

    __slots__ = ()
    name = "restricted_symbol"
    family = "order"
    codes = (ReasonCode.RESTRICTED_SYMBOL,)

    def check(self, order: RiskOrder, ctx: RiskContext) -> Denial | None:
        if order.symbol not in ctx.limits.restricted_symbols:
            return None
        return Denial(ReasonCode.RESTRICTED_SYMBOL, self.name, {"symbol": order.symbol})


class DuplicateClientOrderId(Rule):
    """A client order id may be approved once per session."""

    __slots__ = ()
    name = "duplicate_client_order_id"
    family = "order"
    codes = (ReasonCode.DUPLICATE_CLIENT_ORDER_ID,)

    def check(self, order: RiskOrder, ctx: RiskContext) -> Denial | None:
        if order.client_order_id not in ctx.seen_ids:
            return None
        return Denial(
            ReasonCode.DUPLICATE_CLIENT_ORDER_ID,
            self.name,
            {"client_order_id": order.client_order_id},
        )


class StalePrice(Rule):
    """A known symbol needs a mark no older than ``risk.max_mark_age_s``."""

    __slots__ = ()
    name = "stale_price"
    family = "order"
    codes = (ReasonCode.STALE_PRICE,)

    def check(self, order: RiskOrder, ctx: RiskContext) -> Denial | None:
        max_age = ctx.limits.max_mark_age_s
        if order.sector is None:
            return None  # unknown symbol: its own rule says so
        at = ctx.mark_at.get(order.symbol)
        if at is None:
            return Denial(
                ReasonCode.STALE_PRICE,
                self.name,
                {"symbol": order.symbol, "mark_age_s": None, "max_mark_age_s": max_age},
            )
        if max_age is None:
            return None
        age = ctx.now - at
        if age <= max_age:
            return None
        return Denial(
            ReasonCode.STALE_PRICE,
            self.name,
            {"symbol": order.symbol, "mark_age_s": age, "max_mark_age_s": max_age},
        )


class PriceBand(Rule):
    """The order price must be within ``risk.price_band`` (a fraction) of the last mark."""

    __slots__ = ()
    name = "price_band"
    family = "order"
    codes = (ReasonCode.PRICE_OUTSIDE_BAND,)

    def check(self, order: RiskOrder, ctx: RiskContext) -> Denial | None:
        band = ctx.limits.price_band
        if band is None or not order.price_valid:
            return None
        mark = ctx.marks.get(order.symbol)
        if mark is None:
            return None  # no mark: StalePrice denies
        deviation = order.price / mark - 1.0
        if -band <= deviation <= band:
            return None
        return Denial(
            ReasonCode.PRICE_OUTSIDE_BAND,
            self.name,
            {"price": order.price, "mark": mark, "deviation": deviation, "band": band},
        )


class MaxNotionalPerOrder(Rule):
    """``qty * price`` must not exceed ``risk.max_notional_per_order_usd`` x size multiplier."""

    __slots__ = ()
    name = "max_notional_per_order"
    family = "order"
    codes = (ReasonCode.NOTIONAL_EXCEEDS_MAX_PER_ORDER,)

    def check(self, order: RiskOrder, ctx: RiskContext) -> Denial | None:
        limit = ctx.limits.max_notional_per_order_usd
        if limit is None:
            return None
        limit *= order.size_multiplier
        if order.notional_usd <= limit:
            return None
        return Denial(
            ReasonCode.NOTIONAL_EXCEEDS_MAX_PER_ORDER,
            self.name,
            {
                "notional_usd": order.notional_usd,
                "max_notional_usd": limit,
                "size_multiplier": order.size_multiplier,
            },
        )


class RateLimit(Rule):
    """At most ``risk.max_orders_per_second`` and ``risk.max_orders_per_day`` approvals."""

    __slots__ = ()
    name = "rate_limit"
    family = "order"
    codes = (ReasonCode.RATE_LIMIT_EXCEEDED,)

    def check(self, order: RiskOrder, ctx: RiskContext) -> Denial | None:
        limits = ctx.limits
        now = ctx.now
        per_second = limits.max_orders_per_second
        if per_second and ctx.orders_this_second(now) >= per_second:
            return Denial(
                ReasonCode.RATE_LIMIT_EXCEEDED,
                self.name,
                {"window": "second", "max_orders": per_second},
            )
        per_day = limits.max_orders_per_day
        if per_day and ctx.orders_today(now) >= per_day:
            return Denial(
                ReasonCode.RATE_LIMIT_EXCEEDED,
                self.name,
                {"window": "day", "max_orders": per_day},
            )
        return None


class SymbolOverride(Rule):
    """A per-symbol override: no trading, or reduce-only."""

    __slots__ = ()
    name = "symbol_override"
    family = "order"
    codes = (ReasonCode.SYMBOL_TRADING_DISABLED, ReasonCode.SYMBOL_REDUCE_ONLY)

    def check(self, order: RiskOrder, ctx: RiskContext) -> Denial | None:
        ov = ctx.symbol_overrides.get(order.symbol)
        if ov is None:
            return None
        if ov.trading_disabled:
            return Denial(
                ReasonCode.SYMBOL_TRADING_DISABLED,
                self.name,
                {"symbol": order.symbol, "override_reason": ov.reason},
            )
        if ov.reduce_only and not order.is_reducing:
            return Denial(
                ReasonCode.SYMBOL_REDUCE_ONLY,
                self.name,
                {
                    "symbol": order.symbol,
                    "override_reason": ov.reason,
                    "position_before": order.position_before,
                    "position_after": order.position_after,
                },
            )
        return None


class StrategyOverride(Rule):
    """A per-strategy override: no trading, or reduce-only."""

    __slots__ = ()
    name = "strategy_override"
    family = "order"
    codes = (ReasonCode.STRATEGY_TRADING_DISABLED, ReasonCode.STRATEGY_REDUCE_ONLY)

    def check(self, order: RiskOrder, ctx: RiskContext) -> Denial | None:
        strategy = order.strategy
        if strategy is None:
            return None
        ov = ctx.strategy_overrides.get(strategy)
        if ov is None:
            return None
        if ov.trading_disabled:
            return Denial(
                ReasonCode.STRATEGY_TRADING_DISABLED,
                self.name,
                {"strategy": strategy, "override_reason": ov.reason},
            )
        if ov.reduce_only and not order.is_reducing:
            return Denial(
                ReasonCode.STRATEGY_REDUCE_ONLY,
                self.name,
                {
                    "strategy": strategy,
                    "override_reason": ov.reason,
                    "position_before": order.position_before,
                    "position_after": order.position_after,
                },
            )
        return None
