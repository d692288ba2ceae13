"""The pre-trade rules: one small class per concern, all with ``check(order, ctx)``.

Each rule returns a :class:`~quant.risk.Denial` (stable code + the limit hit
and by how much) or ``None``. Rules keep no state of their own: everything
they read is on the order (input and derived fields) or the context.

Families
--------
- state: the trading-state gate (always enforced).
- order: facts about the order alone (quantity, price, symbol, id, rate,
  overrides).
- portfolio: the book after the order (weights, exposures, loss, drawdown).

A rule whose inputs are missing because another rule already covers the
problem (an unknown symbol has no mark; an invalid quantity has no size)
passes, so each order is denied for its own reasons only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from quant.risk._codes import ReasonCode, RuleMode, TradingState
from quant.risk._context import RiskContext
from quant.risk._limits import RiskLimits
from quant.risk._types import Denial, RiskOrder

__all__ = [
    "BookLoaded",
    "DailyLoss",
    "DuplicateClientOrderId",
    "GrossExposure",
    "MaxDrawdown",
    "MaxNotionalPerOrder",
    "MaxPositionWeight",
    "NetExposure",
    "PriceBand",
    "PriceSanity",
    "QuantitySanity",
    "RateLimit",
    "RestrictedSymbol",
    "Rule",
    "SectorExposure",
    "StalePrice",
    "StrategyOverride",
    "SymbolOverride",
    "TradingStateGate",
    "UnknownSymbol",
    "default_rules",
]

_HALTED = TradingState.HALTED
_REDUCING = TradingState.REDUCING


class Rule(ABC):
    """Base of every rule.

    Attributes
    ----------
    name : str
        Stable key of the rule (used in ``risk.rule_modes``).
    family : str
        ``"state"``, ``"order"`` or ``"portfolio"``.
    codes : tuple of ReasonCode
        The codes the rule can produce.
    mode : RuleMode
        ``deny`` enforces; ``log`` reports in ``CheckResult.shadow`` only.
    """

    __slots__ = ("mode", "enforcing")
    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    codes: ClassVar[tuple[ReasonCode, ...]] = ()
    shadowable: ClassVar[bool] = True

    def __init__(self, mode: RuleMode = RuleMode.DENY) -> None:
        mode = RuleMode(mode)
        if mode is RuleMode.LOG and not self.shadowable:
            raise ValueError(f"rule {self.name!r} cannot run in log mode")
        self.mode = mode
        self.enforcing = mode is RuleMode.DENY

    @abstractmethod
    def check(self, order: RiskOrder, ctx: RiskContext) -> Denial | None:
        """A denial when ``order`` breaks the rule in ``ctx``, else None."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mode={self.mode!s})"


# -- state ---------------------------------------------------------------------------------
class TradingStateGate(Rule):
    """HALTED passes nothing; REDUCING passes only orders that shrink a position."""

    __slots__ = ()
    name = "trading_state"
    family = "state"
    codes = (ReasonCode.TRADING_HALTED, ReasonCode.TRADING_REDUCING)
    shadowable = False

    def check(self, order: RiskOrder, ctx: RiskContext) -> Denial | None:
        state = ctx.state
        if state is _HALTED:
            return Denial(ReasonCode.TRADING_HALTED, self.name, {"trading_state": "HALTED"})
        if state is _REDUCING and not order.is_reducing:
            return Denial(
                ReasonCode.TRADING_REDUCING,
                self.name,
                {
                    "trading_state": "REDUCING",
                    "position_before": order.position_before,
                    "position_after": order.position_after,
                },
            )
        return None


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


# -- portfolio-level -----------------------------------------------------------------------
class BookLoaded(Rule):
    """The sidecar must hold a book with positive equity before it approves anything."""

    __slots__ = ()
    name = "book_loaded"
    family = "portfolio"
    codes = (ReasonCode.BOOK_NOT_LOADED,)
    shadowable = False

    def check(self, order: RiskOrder, ctx: RiskContext) -> Denial | None:
        if ctx.book_loaded and ctx.equity_usd > 0.0:
            return None
        return Denial(
            ReasonCode.BOOK_NOT_LOADED,
            self.name,
            {"book_loaded": ctx.book_loaded, "equity_usd": ctx.equity_usd},
        )


class MaxPositionWeight(Rule):
    """``|position after| * mark / equity`` must not exceed ``risk.max_position_weight``
    x size multiplier, unless the order shrinks the position."""

    __slots__ = ()
    name = "max_position_weight"
    family = "portfolio"
    codes = (ReasonCode.POSITION_EXCEEDS_MAX_WEIGHT,)

    def check(self, order: RiskOrder, ctx: RiskContext) -> Denial | None:
        limit = ctx.limits.max_position_weight
        equity = ctx.equity_usd
        if limit is None or equity <= 0.0 or order.signed_qty == 0.0:
            return None
        after = abs(order.position_after)
        if after <= abs(order.position_before):
            return None
        limit *= order.size_multiplier
        weight = after * order.value_price / equity
        if weight <= limit:
            return None
        return Denial(
            ReasonCode.POSITION_EXCEEDS_MAX_WEIGHT,
            self.name,
            {
                "symbol": order.symbol,
                "weight_after": weight,
                "max_weight": limit,
                "position_after": order.position_after,
                "equity_usd": equity,
            },
        )


class GrossExposure(Rule):
    """Gross exposure after the order, as a multiple of equity, must not exceed
    ``risk.max_gross_exposure`` unless the order lowers it."""

    __slots__ = ()
    name = "gross_exposure"
    family = "portfolio"
    codes = (ReasonCode.GROSS_EXPOSURE_EXCEEDED,)

    def check(self, order: RiskOrder, ctx: RiskContext) -> Denial | None:
        limit = ctx.limits.max_gross_exposure
        equity = ctx.equity_usd
        if limit is None or equity <= 0.0 or order.signed_qty == 0.0:
            return None
        delta = (abs(order.position_after) - abs(order.position_before)) * order.value_price
        if delta <= 0.0:
            return None
        gross = (ctx.gross_usd + delta) / equity
        if gross <= limit:
            return None
        return Denial(
            ReasonCode.GROSS_EXPOSURE_EXCEEDED,
            self.name,
            {"gross_exposure_after": gross, "max_gross_exposure": limit, "equity_usd": equity},
        )


class NetExposure(Rule):
    """``|net exposure| / equity`` after the order must not exceed
    ``risk.max_net_exposure`` unless the order lowers it."""

    __slots__ = ()
    name = "net_exposure"
    family = "portfolio"
    codes = (ReasonCode.NET_EXPOSURE_EXCEEDED,)

    def check(self, order: RiskOrder, ctx: RiskContext) -> Denial | None:
        limit = ctx.limits.max_net_exposure
        equity = ctx.equity_usd
        if limit is None or equity <= 0.0 or order.signed_qty == 0.0:
            return None
        net_before = ctx.net_usd
        net_after = net_before + order.signed_qty * order.value_price
        if abs(net_after) <= abs(net_before):
            return None
        net = abs(net_after) / equity
        if net <= limit:
            return None
        return Denial(
            ReasonCode.NET_EXPOSURE_EXCEEDED,
            self.name,
            {"net_exposure_after": net_after / equity, "max_net_exposure": limit},
        )


class SectorExposure(Rule):
    """Gross exposure of the order's sector after the order, as a share of equity,
    must not exceed ``risk.max_sector_exposure`` unless the order lowers it."""

    __slots__ = ()
    name = "sector_exposure"
    family = "portfolio"
    codes = (ReasonCode.SECTOR_EXPOSURE_EXCEEDED,)

    def check(self, order: RiskOrder, ctx: RiskContext) -> Denial | None:
        limit = ctx.limits.max_sector_exposure
        equity = ctx.equity_usd
        sector = order.sector
        if limit is None or equity <= 0.0 or sector is None or order.signed_qty == 0.0:
            return None
        delta = (abs(order.position_after) - abs(order.position_before)) * order.value_price
        if delta <= 0.0:
            return None
        exposure = (ctx.sector_gross_usd.get(sector, 0.0) + delta) / equity
        if exposure <= limit:
            return None
        return Denial(
            ReasonCode.SECTOR_EXPOSURE_EXCEEDED,
            self.name,
            {"sector": sector, "sector_exposure_after": exposure, "max_sector_exposure": limit},
        )


class DailyLoss(Rule):
    """Once the day's loss reaches the limit (``risk.daily_loss_limit_pct`` of
    start-of-day equity and/or ``risk.daily_loss_limit_usd``), only orders that
    shrink a position pass."""

    __slots__ = ()
    name = "daily_loss"
    family = "portfolio"
    codes = (ReasonCode.DAILY_LOSS_LIMIT,)

    def check(self, order: RiskOrder, ctx: RiskContext) -> Denial | None:
        limit = ctx.daily_loss_limit_usd
        if limit is None or -ctx.day_pnl_usd < limit or order.is_reducing:
            return None
        return Denial(
            ReasonCode.DAILY_LOSS_LIMIT,
            self.name,
            {"day_pnl_usd": ctx.day_pnl_usd, "daily_loss_limit_usd": limit},
        )


class MaxDrawdown(Rule):
    """Once equity is ``risk.max_drawdown_pct`` below its peak, only orders that
    shrink a position pass."""

    __slots__ = ()
    name = "max_drawdown"
    family = "portfolio"
    codes = (ReasonCode.MAX_DRAWDOWN,)

    def check(self, order: RiskOrder, ctx: RiskContext) -> Denial | None:
        limit = ctx.limits.max_drawdown_pct
        if limit is None or ctx.drawdown < limit or order.is_reducing:
            return None
        return Denial(
            ReasonCode.MAX_DRAWDOWN,
            self.name,
            {
                "drawdown": ctx.drawdown,
                "max_drawdown": limit,
                "equity_usd": ctx.equity_usd,
                "peak_equity_usd": ctx.peak_equity_usd,
            },
        )


ORDER_RULES: tuple[type[Rule], ...] = (
    QuantitySanity,
    PriceSanity,
    UnknownSymbol,
    RestrictedSymbol,
    DuplicateClientOrderId,
    StalePrice,
    PriceBand,
    MaxNotionalPerOrder,
    RateLimit,
    SymbolOverride,
    StrategyOverride,
)
PORTFOLIO_RULES: tuple[type[Rule], ...] = (
    BookLoaded,
    MaxPositionWeight,
    GrossExposure,
    NetExposure,
    SectorExposure,
    DailyLoss,
    MaxDrawdown,
)
ALL_RULES: tuple[type[Rule], ...] = (TradingStateGate, *ORDER_RULES, *PORTFOLIO_RULES)
RULE_NAMES: frozenset[str] = frozenset(r.name for r in ALL_RULES)


def default_rules(limits: RiskLimits | None = None) -> list[Rule]:
    """Every rule, state gate first, then order-level, then portfolio-level, each in
    the mode ``limits.rule_modes`` gives it (``deny`` when absent).

    Raises
    ------
    ValueError
        ``rule_modes`` names a rule that does not exist, or puts an
        unshadowable rule (trading state, book loaded) in log mode.
    """
    modes = dict(limits.rule_modes) if limits is not None else {}
    unknown = set(modes) - RULE_NAMES
    if unknown:
        raise ValueError(
            f"unknown rule name(s) in rule_modes: {sorted(unknown)}; known: {sorted(RULE_NAMES)}"
        )
    return [cls(modes.get(cls.name, RuleMode.DENY)) for cls in ALL_RULES]
