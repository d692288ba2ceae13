"""The rule interface every pre-trade rule implements, and the trading-state gate.

A rule returns a :class:`~quant.risk.Denial` (stable code + the limit hit and
by how much) or ``None``, and keeps no state of its own: everything it reads is
on the order (input and derived fields) or the context.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from quant.risk._codes import ReasonCode, RuleMode, TradingState
from quant.risk._context import RiskContext
from quant.risk._types import Denial, RiskOrder

__all__ = ["Rule", "TradingStateGate"]

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
