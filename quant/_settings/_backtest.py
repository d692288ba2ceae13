"""Settings of the research backtest (``QUANT_BACKTEST__*``)."""

from __future__ import annotations

from pydantic import Field

from quant._settings._section import Section

__all__ = ["BacktestSettings"]


class BacktestSettings(Section):
    """Costs and statistics of the research backtest (``quant backtest``).

    The simulator's own costs (``execution.sim_slippage_bps``,
    ``execution.sim_commission_per_share_usd``) apply to every fill; these are
    charged on top, in the backtest's accounting.
    """

    commission_bps: float = Field(
        0.0, ge=0, le=1_000, description="commission on traded notional, basis points"
    )
    impact_coefficient: float = Field(
        0.0,
        ge=0,
        le=10,
        description=(
            "square-root market impact: cost = coefficient x daily vol x sqrt(qty / ADV) "
            "of the notional; 0 = off"
        ),
    )
    impact_sessions: int = Field(
        20, ge=2, le=260, description="sessions of the daily volatility and ADV of the impact"
    )
    periods_per_year: int = Field(
        252, ge=1, le=366, description="sessions per year when annualising"
    )
    baselines: bool = Field(
        True, description="also run the equal-weight and top_k baselines"
    )
