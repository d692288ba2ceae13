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

from quant.risk._codes import RuleMode
from quant.risk._limits import RiskLimits
from quant.risk._order_rules import (
    DuplicateClientOrderId,
    MaxNotionalPerOrder,
    PriceBand,
    PriceSanity,
    QuantitySanity,
    RateLimit,
    RestrictedSymbol,
    StalePrice,
    StrategyOverride,
    SymbolOverride,
    UnknownSymbol,
)
from quant.risk._portfolio_rules import (
    BookLoaded,
    DailyLoss,
    GrossExposure,
    MaxDrawdown,
    MaxPositionWeight,
    NetExposure,
    SectorExposure,
)
from quant.risk._rule import Rule, TradingStateGate

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
