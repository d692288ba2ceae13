"""The objects the rules see and return: an order under check, a denial, a result."""

from __future__ import annotations

from typing import Any

from quant.risk._codes import ReasonCode

__all__ = ["CheckResult", "Denial", "RiskOrder"]


class RiskOrder:
    """One order as the rules see it.

    The six input fields come from the caller; the derived fields are filled
    once by :meth:`quant.risk.RiskContext.prepare` so that no rule recomputes
    them. Quantities are in shares (signed: buy > 0, sell < 0), prices and
    notionals in USD.

    Parameters
    ----------
    client_order_id : str
        The caller's deterministic id of the order.
    symbol : str
        Upper-case ticker.
    side : str
        ``"buy"`` or ``"sell"``.
    qty : float
        Shares, positive; must be whole and a multiple of the lot size.
    price : float
        Limit or reference price in USD (for market orders the last close).
    strategy : str or None
        Strategy that produced the order (for strategy overrides).
    """

    __slots__ = (
        "client_order_id",
        "symbol",
        "side",
        "qty",
        "price",
        "strategy",
        # derived by RiskContext.prepare
        "qty_valid",
        "price_valid",
        "signed_qty",
        "notional_usd",
        "position_before",
        "position_after",
        "is_reducing",
        "value_price",
        "size_multiplier",
        "sector",
    )

    def __init__(
        self,
        client_order_id: str,
        symbol: str,
        side: str,
        qty: float,
        price: float,
        strategy: str | None = None,
    ) -> None:
        self.client_order_id = client_order_id
        self.symbol = symbol
        self.side = side
        self.qty = qty
        self.price = price
        self.strategy = strategy

    def __repr__(self) -> str:
        return (
            f"RiskOrder({self.client_order_id!r}, {self.symbol!r}, {self.side!r}, "
            f"{self.qty!r}, {self.price!r}, strategy={self.strategy!r})"
        )


class Denial:
    """A rule's verdict against one order: a stable code plus what limit was hit by how much.

    Attributes
    ----------
    code : ReasonCode
    rule : str
        Name of the rule that produced it (the key used in ``risk.rule_modes``).
    context : dict
        Structured detail, e.g. ``{"notional_usd": 300000.0, "max_notional_usd": 250000.0}``.
    """

    __slots__ = ("code", "rule", "context")

    def __init__(self, code: ReasonCode, rule: str, context: dict[str, Any]) -> None:
        self.code = code
        self.rule = rule
        self.context = context

    def as_dict(self) -> dict[str, Any]:
        return {"code": str(self.code), "rule": self.rule, "context": self.context}

    def __repr__(self) -> str:
        return f"Denial({self.code!s}, rule={self.rule!r}, context={self.context!r})"


class CheckResult:
    """The outcome for one order.

    Attributes
    ----------
    approved : bool
        True when no enforcing rule denied it.
    denials : list of Denial
        Denials from enforcing rules (the order is refused when non-empty).
    shadow : list of Denial
        Denials from rules in log (shadow) mode: reported, not enforced.
    """

    __slots__ = ("client_order_id", "approved", "denials", "shadow")

    def __init__(
        self,
        client_order_id: str,
        approved: bool,
        denials: list[Denial],
        shadow: list[Denial],
    ) -> None:
        self.client_order_id = client_order_id
        self.approved = approved
        self.denials = denials
        self.shadow = shadow

    @property
    def reasons(self) -> list[str]:
        """Reason codes of the enforcing denials, in rule order."""
        return [str(d.code) for d in self.denials]

    def __repr__(self) -> str:
        return (
            f"CheckResult({self.client_order_id!r}, approved={self.approved}, "
            f"reasons={self.reasons}, shadow={[str(d.code) for d in self.shadow]})"
        )
