"""Stable identifiers of the risk layer: reason codes, trading states, rule modes.

The string values are part of the sidecar's HTTP contract and of the rows in
``ops.kill_switch_events``: never rename one, only add.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["KillMode", "ReasonCode", "RuleMode", "TradingState"]


class ReasonCode(StrEnum):
    """Why an order was denied (or, in shadow mode, would have been)."""

    # trading state gate
    TRADING_HALTED = "TRADING_HALTED"
    TRADING_REDUCING = "TRADING_REDUCING"
    # order-level
    INVALID_QUANTITY = "INVALID_QUANTITY"
    INVALID_PRICE = "INVALID_PRICE"
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    RESTRICTED_SYMBOL = "RESTRICTED_SYMBOL"
    DUPLICATE_CLIENT_ORDER_ID = "DUPLICATE_CLIENT_ORDER_ID"
    STALE_PRICE = "STALE_PRICE"
    PRICE_OUTSIDE_BAND = "PRICE_OUTSIDE_BAND"
    NOTIONAL_EXCEEDS_MAX_PER_ORDER = "NOTIONAL_EXCEEDS_MAX_PER_ORDER"
    RATE_LIMIT_EXCEEDED = "RATE_LIMIT_EXCEEDED"
    SYMBOL_TRADING_DISABLED = "SYMBOL_TRADING_DISABLED"
    SYMBOL_REDUCE_ONLY = "SYMBOL_REDUCE_ONLY"
    STRATEGY_TRADING_DISABLED = "STRATEGY_TRADING_DISABLED"
    STRATEGY_REDUCE_ONLY = "STRATEGY_REDUCE_ONLY"
    # portfolio-level
    BOOK_NOT_LOADED = "BOOK_NOT_LOADED"
    POSITION_EXCEEDS_MAX_WEIGHT = "POSITION_EXCEEDS_MAX_WEIGHT"
    GROSS_EXPOSURE_EXCEEDED = "GROSS_EXPOSURE_EXCEEDED"
    NET_EXPOSURE_EXCEEDED = "NET_EXPOSURE_EXCEEDED"
    SECTOR_EXPOSURE_EXCEEDED = "SECTOR_EXPOSURE_EXCEEDED"
    DAILY_LOSS_LIMIT = "DAILY_LOSS_LIMIT"
    MAX_DRAWDOWN = "MAX_DRAWDOWN"
    # kill-switch events (never attached to an order)
    STALE_FEED = "STALE_FEED"
    REJECTION_BURST = "REJECTION_BURST"
    MANUAL = "MANUAL"
    STATE_UNREADABLE = "STATE_UNREADABLE"
    STATE_RESTORED = "STATE_RESTORED"
    OVERRIDE = "OVERRIDE"


class TradingState(StrEnum):
    """What the sidecar lets through.

    ``ACTIVE``: every order that passes the rules. ``REDUCING``: only orders
    that shrink a position without flipping it. ``HALTED``: nothing new
    (cancels are always allowed; they never go through the check).
    """

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"

    @property
    def severity(self) -> int:
        """0 for ACTIVE, 1 for REDUCING, 2 for HALTED: larger is stricter."""
        return _SEVERITY[self]


_SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


class RuleMode(StrEnum):
    """``deny`` enforces a rule; ``log`` (shadow mode) only reports what it would deny."""

    DENY = "deny"
    LOG = "log"


class KillMode(StrEnum):
    """What a kill does: ``halt`` and ``flatten`` go HALTED (flatten also closes
    every position with reduce-only orders), ``reduce`` goes REDUCING."""

    HALT = "halt"
    REDUCE = "reduce"
    FLATTEN = "flatten"

    @property
    def target_state(self) -> TradingState:
        """The trading state this kill mode moves to."""
        return TradingState.REDUCING if self is KillMode.REDUCE else TradingState.HALTED
