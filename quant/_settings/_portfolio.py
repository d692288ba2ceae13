"""Settings of portfolio construction (``QUANT_PORTFOLIO__*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from quant._settings._section import Section

__all__ = ["PORTFOLIO_METHODS", "PortfolioSettings"]

PORTFOLIO_METHODS: tuple[str, ...] = (
    "mean_variance",
    "min_volatility",
    "hrp",
    "risk_parity",
    "cvar",
    "top_k",
)
"""Names of the portfolio construction methods (``QUANT_PORTFOLIO__OPTIMIZER``)."""


class PortfolioSettings(Section):
    """Portfolio construction: the method, the risk model and every limit on the weights.

    Weights are fractions of equity. Long-only books hold weights >= 0 summing to
    at most ``max_leverage x (1 - cash_buffer)``; long/short books keep their gross
    exposure under the same cap and their net exposure in
    [``min_net_exposure``, ``max_net_exposure``].
    """

    optimizer: Literal[
        "mean_variance", "min_volatility", "hrp", "risk_parity", "cvar", "top_k"
    ] = Field("mean_variance", description="default construction method of a run")
    long_only: bool = Field(True, description="long-only (true) or long/short (false)")
    max_leverage: float = Field(
        1.0, gt=0, le=10, description="largest gross exposure sum(|w|), fraction of equity"
    )
    min_net_exposure: float = Field(
        -0.10, ge=-10, le=10, description="long/short only: smallest net exposure sum(w)"
    )
    max_net_exposure: float = Field(
        0.10, ge=-10, le=10, description="long/short only: largest net exposure sum(w)"
    )
    max_weight: float = Field(0.10, gt=0, le=1, description="largest |weight| of one name")
    max_sector_weight: float | None = Field(
        0.25, gt=0, le=10, description="largest sum of |weight| in one sector (null = off)"
    )
    turnover_cap: float | None = Field(
        None, gt=0, le=20, description="largest sum(|w - w_current|) of one rebalance (null = off)"
    )
    turnover_penalty: float = Field(
        0.002,
        ge=0,
        le=0.1,
        description=(
            "expected transaction cost per unit of traded value sum(|w - w_current|) (0.002 = 20 "
            "bps); the optimiser weighs it against the expected return over cost_horizon_sessions"
        ),
    )
    cost_horizon_sessions: int = Field(
        5,
        ge=1,
        le=252,
        description=(
            "sessions a trade's expected return is earned over before it is traded again (the "
            "model's label horizon): the cost term is turnover_penalty x 252 / this, per year"
        ),
    )
    no_trade_band: float = Field(
        0.0025,
        ge=0,
        lt=0.5,
        description="weight changes smaller than this (fraction of equity) are not traded (0 = off)",
    )
    ic_source: Literal["realised", "configured"] = Field(
        "realised",
        description=(
            "information coefficient of the expected returns: the model's recent realised rank "
            "IC (shrunk, floored at 0), or score_ic"
        ),
    )
    ic_window_sessions: int = Field(
        63, ge=5, le=1_000, description="prediction sessions the realised IC is averaged over"
    )
    ic_min_sessions: int = Field(
        20,
        ge=2,
        le=1_000,
        description="fewer sessions with a known outcome: fall back to the validation IC, then score_ic",
    )
    ic_confidence: float = Field(
        1.0,
        ge=0,
        le=5,
        description="standard errors taken off the mean realised IC before it is used (shrinkage)",
    )
    min_position: float = Field(
        0.005, ge=0, lt=1, description="smaller |weights| go to zero and are redistributed"
    )
    cash_buffer: float = Field(
        0.02, ge=0, lt=1, description="fraction of the gross cap kept uninvested"
    )
    vol_target: float | None = Field(
        0.10, gt=0, le=5, description="annualised ex-ante volatility the book is scaled to (null = off)"
    )
    risk_model: Literal["ledoit_wolf", "exponential", "sample"] = Field(
        "ledoit_wolf", description="covariance estimator of the trailing returns"
    )
    lookback_sessions: int = Field(
        252, ge=20, le=5_000, description="sessions of trailing returns the covariance uses"
    )
    min_history_sessions: int = Field(
        60, ge=10, le=5_000, description="names with fewer returns in the lookback are left out"
    )
    ewm_halflife_sessions: float = Field(
        63.0, gt=0, description="half-life of the exponentially weighted covariance, sessions"
    )
    risk_aversion: float = Field(
        1.0, gt=0, description="mean_variance and cvar: weight of risk against expected return"
    )
    l2_gamma: float = Field(
        0.1, ge=0, description="mean_variance: L2 regularisation (spreads weight over names)"
    )
    score_ic: float = Field(
        0.05,
        gt=0,
        le=1,
        description=(
            "expected return = IC x annual vol x cross-sectional z-score of the score: the IC "
            "when ic_source is configured, or no realised or validation IC exists yet"
        ),
    )
    top_k: int = Field(20, ge=1, le=5_000, description="top_k: names held (per side)")
    top_k_max_drops: int = Field(
        5, ge=0, le=5_000, description="top_k: most held names replaced per day (per side)"
    )
    cvar_alpha: float = Field(0.05, gt=0, lt=0.5, description="cvar: tail probability")
    fallback_chain: tuple[Literal["relax_turnover", "hrp", "hold"], ...] = Field(
        ("relax_turnover", "hrp", "hold"),
        description="what is tried, in order, when a method fails; all cash is the last resort",
    )
    tolerance: float = Field(
        1e-6, gt=0, le=1e-2, description="slack of every limit check, in weight units"
    )
    returns_relation: str = Field(
        "intermediate.int_prices_adjusted",
        pattern=r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$",
        description="schema.table of daily total returns (symbol, session_date, total_return)",
    )
    universe_relation: str = Field(
        "marts.universe",
        pattern=r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$",
        description="schema.table of the universe (symbol, session_date, sector, is_tradable)",
    )

    @model_validator(mode="after")
    def _check_consistent(self) -> PortfolioSettings:
        if self.min_net_exposure > self.max_net_exposure:
            raise ValueError(
                f"min_net_exposure ({self.min_net_exposure}) is above "
                f"max_net_exposure ({self.max_net_exposure})"
            )
        if not self.long_only and (
            self.min_net_exposure > self.max_leverage or self.max_net_exposure < -self.max_leverage
        ):
            raise ValueError("the net exposure band lies outside [-max_leverage, max_leverage]")
        if self.min_history_sessions > self.lookback_sessions:
            raise ValueError(
                f"min_history_sessions ({self.min_history_sessions}) is above "
                f"lookback_sessions ({self.lookback_sessions})"
            )
        if self.min_position >= self.max_weight:
            raise ValueError(
                f"min_position ({self.min_position}) must be below max_weight ({self.max_weight})"
            )
        if self.ic_min_sessions > self.ic_window_sessions:
            raise ValueError(
                f"ic_min_sessions ({self.ic_min_sessions}) is above "
                f"ic_window_sessions ({self.ic_window_sessions})"
            )
        if len(set(self.fallback_chain)) != len(self.fallback_chain):
            raise ValueError(f"fallback_chain {list(self.fallback_chain)} lists a step twice")
        return self
