"""Run every rule over each order, in process, in microseconds."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from quant.risk._context import RiskContext
from quant.risk._rules import Rule, default_rules
from quant.risk._types import CheckResult, Denial, RiskOrder

__all__ = ["RiskEngine"]


class RiskEngine:
    """Checks orders against a list of rules and books the approved ones as in flight.

    Parameters
    ----------
    ctx : RiskContext
        The book the rules read; approved orders are recorded into it.
    rules : sequence of Rule, optional
        Defaults to :func:`quant.risk.default_rules` for ``ctx.limits``.

    Notes
    -----
    Every rule runs on every order (no short-circuit), so a denial lists all
    the reasons and shadow-mode rules are always evaluated. Orders in one
    batch are checked in order: an order approved earlier in the batch counts
    against the limits of the ones after it.
    """

    __slots__ = ("ctx", "rules", "_enforced", "_shadow")

    def __init__(self, ctx: RiskContext, rules: Sequence[Rule] | None = None) -> None:
        self.ctx = ctx
        self.rules: tuple[Rule, ...] = tuple(
            rules if rules is not None else default_rules(ctx.limits)
        )
        self._enforced = tuple(r.check for r in self.rules if r.enforcing)
        self._shadow = tuple(r.check for r in self.rules if not r.enforcing)

    def check(self, order: RiskOrder, now: float | None = None) -> CheckResult:
        """Check one order; an approved order is booked as in flight.

        Parameters
        ----------
        order : RiskOrder
            Its derived fields are filled here.
        now : float, optional
            POSIX seconds; defaults to the wall clock.
        """
        ctx = self.ctx
        ctx.now = time.time() if now is None else now
        return self._check(order, ctx)

    def check_batch(
        self, orders: Iterable[RiskOrder], now: float | None = None
    ) -> list[CheckResult]:
        """Check orders in sequence (one clock reading for the batch)."""
        ctx = self.ctx
        ctx.now = time.time() if now is None else now
        check = self._check
        return [check(o, ctx) for o in orders]

    def _check(self, order: RiskOrder, ctx: RiskContext) -> CheckResult:
        ctx.prepare(order)
        denials: list[Denial] = []
        for check in self._enforced:
            d = check(order, ctx)
            if d is not None:
                denials.append(d)
        shadow: list[Denial] = []
        if self._shadow:
            for check in self._shadow:
                d = check(order, ctx)
                if d is not None:
                    shadow.append(d)
        if denials:
            return CheckResult(order.client_order_id, False, denials, shadow)
        ctx.record_approval(order)
        return CheckResult(order.client_order_id, True, denials, shadow)
