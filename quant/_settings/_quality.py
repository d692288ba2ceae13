"""Settings of the data-quality gates (``QUANT_QUALITY__*``)."""

from __future__ import annotations

from pydantic import Field

from quant._settings._section import Section

__all__ = ["QualitySettings"]


class QualitySettings(Section):
    """Thresholds of the data-quality gates (Great Expectations)."""

    min_coverage: float = Field(
        0.9, gt=0, le=1, description="share of the listed names that must have a bar on the date"
    )
    max_jump_sigmas: float = Field(
        8.0, gt=0, description="largest close-to-close move, in multiples of recent volatility"
    )
    volatility_sessions: int = Field(
        20, ge=5, le=250, description="sessions of history behind the recent volatility"
    )
    min_volatility: float = Field(
        0.005, gt=0, description="floor of the recent daily volatility (fraction)"
    )
    min_feature_coverage: float = Field(
        0.95, gt=0, le=1, description="share of tradable names that must have features"
    )
    warn_only: tuple[str, ...] = Field(
        (), description="check names demoted from blocking to warning"
    )
