"""Portfolio-level pre-trade rules: the book after the order (weights, exposures, loss,
drawdown)."""

from __future__ import annotations

from quant.risk._codes import ReasonCode
from quant.risk._context import RiskContext
from quant.risk._rule import Rule
from quant.risk._types import Denial, RiskOrder

__all__ = [
    "BookLoaded",
    "DailyLoss",
    "GrossExposure",
    "MaxDrawdown",
    "MaxPositionWeight",
    "NetExposure",
    "SectorExposure",
]


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
