"""Settings of the synthetic market (``QUANT_SYNTHETIC__*``)."""

from __future__ import annotations

from pydantic import Field

from quant._settings._section import Section

__all__ = ["SyntheticSettings"]


class SyntheticSettings(Section):
    """The synthetic market (the offline default provider)."""

    symbols: int = Field(50, ge=2, le=5000, description="number of symbols in the universe")
    seed: int = Field(7, ge=0, description="random seed; the same seed gives the same market")
    signal_strength: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="test-only: strength of a planted predictable signal (0 = none)",
    )
