"""Settings of the sidecar's pre-trade rules, overrides and kill switch (``QUANT_RISK__*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from quant._settings._section import Section

__all__ = ["OverrideSettings", "RiskSettings"]


class OverrideSettings(Section):
    """A configured restriction on one symbol or one strategy (the strictest applies)."""

    size_multiplier: float = Field(
        1.0, ge=0.0, description="scales the per-order notional and position-weight limits"
    )
    reduce_only: bool = Field(False, description="only orders that shrink the position pass")
    trading_disabled: bool = Field(False, description="no order passes")
    reason: str = Field("configured", description="why, shown in the sidecar state")


class RiskSettings(Section):
    """Limits of the sidecar's pre-trade rules and its kill-switch triggers.

    Fractions are of current equity unless said otherwise; ``null``/``None``
    switches a limit off.
    """

    max_notional_per_order_usd: float | None = Field(
        250_000.0, gt=0, description="largest qty x price of one order, USD"
    )
    max_position_weight: float | None = Field(
        0.10, gt=0, description="largest |position| x mark / equity after an order"
    )
    price_band: float | None = Field(
        0.10, gt=0, description="largest |price / last mark - 1| of an order"
    )
    max_mark_age_s: float | None = Field(
        86_400.0, gt=0, description="oldest mark an order may be checked against, seconds"
    )
    daily_loss_limit_pct: float | None = Field(
        0.03, gt=0, lt=1, description="day loss limit as a fraction of start-of-day equity"
    )
    daily_loss_limit_usd: float | None = Field(
        None, gt=0, description="day loss limit in USD (the stricter of the two applies)"
    )
    max_drawdown_pct: float | None = Field(
        0.10, gt=0, lt=1, description="largest fall of equity from its peak, fraction"
    )
    max_gross_exposure: float | None = Field(
        1.5, gt=0, description="largest sum of |position value| / equity after an order"
    )
    max_net_exposure: float | None = Field(
        1.0, gt=0, description="largest |sum of position value| / equity after an order"
    )
    max_sector_exposure: float | None = Field(
        0.35, gt=0, description="largest gross value of one sector / equity after an order"
    )
    max_orders_per_second: int = Field(1_000, ge=0, description="approvals per second (0 = off)")
    max_orders_per_day: int = Field(20_000, ge=0, description="approvals per UTC day (0 = off)")
    lot_size: int = Field(1, ge=1, description="order quantities must be a multiple of this")
    restricted_symbols: list[str] = Field(
        default_factory=list, description="symbols no order may trade"
    )
    rule_modes: dict[str, Literal["deny", "log"]] = Field(
        default_factory=dict,
        description="per rule name: deny (enforce) or log (shadow mode); default deny",
    )
    symbol_overrides: dict[str, OverrideSettings] = Field(
        default_factory=dict, description="per-symbol size multiplier / reduce-only / no trading"
    )
    strategy_overrides: dict[str, OverrideSettings] = Field(
        default_factory=dict, description="per-strategy size multiplier / reduce-only / no trading"
    )
    # kill-switch triggers
    kill_on_breach: Literal["halt", "reduce", "off"] = Field(
        "halt", description="what a daily-loss or drawdown breach does to trading"
    )
    stale_feed_s: float | None = Field(
        300.0,
        gt=0,
        description="during market hours, trip when the mark feed is silent this long, seconds",
    )
    rejection_burst: int = Field(
        200, ge=0, description="trip after this many denials within rejection_window_s (0 = off)"
    )
    rejection_window_s: float = Field(10.0, gt=0, description="window of rejection_burst, seconds")
    cancel_attempts: int = Field(
        3, ge=1, le=20, description="rounds of cancel-all on a kill before giving up"
    )
    flatten_attempts: int = Field(
        3, ge=1, le=20, description="rounds of reduce-only closing orders on a flatten kill"
    )

    @field_validator("restricted_symbols", mode="after")
    @classmethod
    def _upper_symbols(cls, value: list[str]) -> list[str]:
        return sorted({s.strip().upper() for s in value if s.strip()})

    @field_validator("rule_modes", mode="after")
    @classmethod
    def _known_rules(cls, value: dict[str, str]) -> dict[str, str]:
        from quant.risk import RULE_NAMES

        unknown = sorted(set(value) - RULE_NAMES)
        if unknown:
            raise ValueError(f"unknown rule(s) {unknown}; known: {sorted(RULE_NAMES)}")
        for name in ("trading_state", "book_loaded"):
            if value.get(name) == "log":
                raise ValueError(f"rule {name!r} cannot run in log mode")
        return value
