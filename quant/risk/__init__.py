"""Pre-trade risk: rules, the trading state machine and kill-switch triggers.

This package is the sidecar's hot path: it imports only the standard
library. Typical use::

    from quant.risk import RiskContext, RiskEngine, RiskLimits, RiskOrder

    ctx = RiskContext(RiskLimits.from_mapping(settings.risk.model_dump()))
    ctx.load_book(cash_usd=1e6, positions={}, marks={"AAPL": 190.0}, now=time.time(),
                  universe={"AAPL": "Technology"}, session="2026-11-20")
    engine = RiskEngine(ctx)
    result = engine.check(RiskOrder("o-1", "AAPL", "buy", 100, 190.5))
    result.approved, result.reasons
"""

from quant.risk._codes import KillMode, ReasonCode, RuleMode, TradingState
from quant.risk._context import RiskContext
from quant.risk._engine import RiskEngine
from quant.risk._killswitch import (
    Breach,
    RejectionBurstDetector,
    StateEvent,
    TradingStateMachine,
    feed_is_stale,
    find_breaches,
)
from quant.risk._limits import Override, RiskLimits
from quant.risk._rules import (
    ALL_RULES,
    ORDER_RULES,
    PORTFOLIO_RULES,
    RULE_NAMES,
    Rule,
    TradingStateGate,
    default_rules,
)
from quant.risk._types import CheckResult, Denial, RiskOrder

__all__ = [
    "ALL_RULES",
    "Breach",
    "CheckResult",
    "Denial",
    "KillMode",
    "ORDER_RULES",
    "Override",
    "PORTFOLIO_RULES",
    "RULE_NAMES",
    "ReasonCode",
    "RejectionBurstDetector",
    "RiskContext",
    "RiskEngine",
    "RiskLimits",
    "RiskOrder",
    "Rule",
    "RuleMode",
    "StateEvent",
    "TradingState",
    "TradingStateGate",
    "TradingStateMachine",
    "default_rules",
    "feed_is_stale",
    "find_breaches",
]
