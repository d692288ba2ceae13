"""Limits of the rules engine, as plain precomputed numbers.

:class:`RiskLimits` mirrors ``quant.config.RiskSettings`` field for field but
imports nothing beyond the standard library, so the hot path never touches
pydantic. Build it with :meth:`RiskLimits.from_mapping` from
``settings.risk.model_dump()``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from quant.risk._codes import RuleMode

__all__ = ["Override", "RiskLimits"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Override:
    """A restriction on one symbol or one strategy.

    Parameters
    ----------
    size_multiplier : float
        Scales the per-order notional limit and the position-weight limit
        (0 < m <= 1 tightens; values above 1 are allowed but the strictest
        of the symbol and strategy overrides applies).
    reduce_only : bool
        Only orders that shrink the position pass.
    trading_disabled : bool
        No order passes.
    reason : str
        Why it was set (shown in the state and the event log).
    """

    size_multiplier: float = 1.0
    reduce_only: bool = False
    trading_disabled: bool = False
    reason: str = ""

    def __post_init__(self) -> None:
        if not (self.size_multiplier >= 0.0 and math.isfinite(self.size_multiplier)):
            raise ValueError(f"size_multiplier must be finite and >= 0, got {self.size_multiplier}")

    @property
    def is_neutral(self) -> bool:
        """True when the override restricts nothing (it can then be dropped)."""
        return self.size_multiplier == 1.0 and not self.reduce_only and not self.trading_disabled

    def as_dict(self) -> dict[str, Any]:
        return {
            "size_multiplier": self.size_multiplier,
            "reduce_only": self.reduce_only,
            "trading_disabled": self.trading_disabled,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskLimits:
    """Every limit the rules use. Fractions are of current equity unless said otherwise.

    ``None`` (or 0 for counts) switches a limit off.
    """

    max_notional_per_order_usd: float | None = 250_000.0
    max_position_weight: float | None = 0.10
    price_band: float | None = 0.10
    max_mark_age_s: float | None = 86_400.0
    daily_loss_limit_pct: float | None = 0.03
    daily_loss_limit_usd: float | None = None
    max_drawdown_pct: float | None = 0.10
    max_gross_exposure: float | None = 1.5
    max_net_exposure: float | None = 1.0
    max_sector_exposure: float | None = 0.35
    max_orders_per_second: int = 1_000
    max_orders_per_day: int = 20_000
    lot_size: int = 1
    restricted_symbols: frozenset[str] = frozenset()
    rule_modes: Mapping[str, RuleMode] = field(default_factory=dict)
    symbol_overrides: Mapping[str, Override] = field(default_factory=dict)
    strategy_overrides: Mapping[str, Override] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.lot_size < 1:
            raise ValueError(f"lot_size must be >= 1, got {self.lot_size}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> RiskLimits:
        """Build from a mapping (e.g. ``settings.risk.model_dump()``), ignoring keys
        that are not limits (kill-switch settings live beside them)."""
        names = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {k: v for k, v in values.items() if k in names}
        if "restricted_symbols" in kwargs:
            kwargs["restricted_symbols"] = frozenset(
                s.upper() for s in kwargs["restricted_symbols"]
            )
        if "rule_modes" in kwargs:
            kwargs["rule_modes"] = {k: RuleMode(v) for k, v in kwargs["rule_modes"].items()}
        for key in ("symbol_overrides", "strategy_overrides"):
            if key in kwargs:
                kwargs[key] = {
                    (k.upper() if key == "symbol_overrides" else k): (
                        v if isinstance(v, Override) else Override(**v)
                    )
                    for k, v in kwargs[key].items()
                }
        return cls(**kwargs)

    def daily_loss_limit_for(self, sod_equity_usd: float) -> float | None:
        """The day's loss limit in USD (the stricter of the share and the amount), or None."""
        candidates = []
        if self.daily_loss_limit_pct is not None and sod_equity_usd > 0:
            candidates.append(self.daily_loss_limit_pct * sod_equity_usd)
        if self.daily_loss_limit_usd is not None:
            candidates.append(self.daily_loss_limit_usd)
        return min(candidates) if candidates else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view (for ``GET /v1/state``)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, frozenset):
                value = sorted(value)
            elif f.name in ("symbol_overrides", "strategy_overrides"):
                value = {k: v.as_dict() for k, v in value.items()}
            elif f.name == "rule_modes":
                value = {k: str(v) for k, v in value.items()}
            out[f.name] = value
        return out
