"""One settings object for the whole package.

Values come, highest priority first, from keyword arguments, the environment
(``QUANT_*`` variables and ``DATABASE_URL``) and an optional YAML file named by
``QUANT_CONFIG``. Nested sections are set in YAML or with ``__`` in the
variable name (``QUANT_SYNTHETIC__SYMBOLS=500``).

Every value is checked when the object is built: a bad value raises
:class:`~quant.exceptions.ConfigurationError` naming the setting, and an
unknown ``QUANT_*`` variable is refused rather than silently ignored.
"""

from __future__ import annotations

import os
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from quant.exceptions import ConfigurationError

__all__ = [
    "PROVIDER_NAMES",
    "OverrideSettings",
    "PORTFOLIO_METHODS",
    "PortfolioSettings",
    "RiskSettings",
    "Settings",
    "SyntheticSettings",
    "get_settings",
    "load_settings",
    "ModelSettings",
    "ExecutionSettings",
    "BacktestSettings",
]

ENV_PREFIX = "QUANT_"
PROVIDER_NAMES: tuple[str, ...] = ("synthetic", "csv", "alpaca", "ibkr")
"""Names a ``QUANT_PROVIDER`` chain may use."""
_NESTED = "__"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SyntheticSettings(_Section):
    """The synthetic market (the offline default provider)."""

    symbols: int = Field(50, ge=2, le=5000, description="number of symbols in the universe")
    seed: int = Field(7, ge=0, description="random seed; the same seed gives the same market")
    signal_strength: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="test-only: strength of a planted predictable signal (0 = none)",
    )


class OverrideSettings(_Section):
    """A configured restriction on one symbol or one strategy (the strictest applies)."""

    size_multiplier: float = Field(
        1.0, ge=0.0, description="scales the per-order notional and position-weight limits"
    )
    reduce_only: bool = Field(False, description="only orders that shrink the position pass")
    trading_disabled: bool = Field(False, description="no order passes")
    reason: str = Field("configured", description="why, shown in the sidecar state")


class RiskSettings(_Section):
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


class ModelSettings(_Section):
    """The return model: its label, LightGBM parameters, validation and retrain policy."""

    horizon_sessions: int = Field(
        5, ge=1, le=252, description="label horizon: forward total return over this many sessions"
    )
    target: Literal["rank", "zscore"] = Field(
        "rank", description="how the forward return is normalised per session before fitting"
    )
    objective: Literal["regression", "lambdarank"] = Field(
        "regression", description="LightGBM objective: regression on the target, or LambdaRank"
    )
    features: tuple[str, ...] = Field(
        (), description="feature columns to use; empty = every numeric column of marts.features"
    )
    max_feature_null_share: float = Field(
        0.2,
        ge=0.0,
        le=1.0,
        description="a feature null in more than this share of training rows is left out",
    )
    train_window_sessions: int = Field(
        1260, ge=60, description="sessions of history a model is trained on (about 5 years)"
    )
    validation_folds: int = Field(4, ge=1, le=20, description="walk-forward validation folds")
    validation_sessions: int = Field(
        63, ge=5, description="sessions in each walk-forward validation fold"
    )
    embargo_sessions: int | None = Field(
        None, ge=0, description="gap between training and validation sessions; unset = horizon"
    )
    min_train_sessions: int = Field(
        60, ge=10, description="fewest training sessions a validation fold may have"
    )
    num_boost_round: int = Field(400, ge=1, description="most boosting rounds")
    early_stopping_rounds: int = Field(
        30, ge=1, description="stop when the validation loss has not improved for this many rounds"
    )
    learning_rate: float = Field(0.05, gt=0, le=1, description="LightGBM learning rate")
    num_leaves: int = Field(15, ge=2, le=1024, description="LightGBM leaves per tree")
    min_data_in_leaf: int = Field(200, ge=1, description="LightGBM fewest rows in a leaf")
    feature_fraction: float = Field(
        0.8, gt=0, le=1, description="share of features each tree may use"
    )
    bagging_fraction: float = Field(0.8, gt=0, le=1, description="share of rows each tree sees")
    lambda_l2: float = Field(1.0, ge=0, description="LightGBM L2 regularisation")
    max_bin: int = Field(63, ge=4, le=1023, description="LightGBM histogram bins per feature")
    bin_sample_rows: int = Field(
        200_000,
        ge=1_000,
        description=(
            "rows LightGBM samples to place the histogram bins (bin_construct_sample_cnt); "
            "fewer than the training rows builds datasets faster and changes the model"
        ),
    )
    num_threads: int = Field(
        1, ge=1, le=64, description="LightGBM threads (fixed: part of what makes training repeatable)"
    )
    seed: int = Field(42, ge=0, description="seed of every random choice in training")
    retrain_schedule: Literal["daily", "weekly", "monthly", "never"] = Field(
        "weekly",
        description="calendar retrain: every session, first session of a week or month, or never",
    )
    drift_threshold: float = Field(
        0.25, gt=0, description="retrain when an input's population stability index exceeds this"
    )
    drift_window_sessions: int = Field(
        20, ge=1, description="latest sessions whose features are compared with the training data"
    )
    drift_statistic: Literal["max", "mean"] = Field(
        "max", description="drift of the inputs: the largest feature PSI, or their mean"
    )
    drift_bins: int = Field(10, ge=2, le=100, description="quantile bins of the drift statistic")
    marts_schema: str = Field(
        "marts",
        pattern=r"^[a-z_][a-z0-9_]*$",
        description="schema of the dbt marts the model reads (features, labels, universe)",
    )
    promotion_margin: float = Field(
        0.005,
        ge=0,
        description="a new model replaces the champion only if its rank IC is higher by this",
    )

    @field_validator("features", mode="after")
    @classmethod
    def _unique_features(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(dict.fromkeys(v.strip() for v in value if v.strip()))
        return cleaned

    @property
    def embargo(self) -> int:
        """Sessions embargoed between training and validation (the horizon when unset)."""
        return self.horizon_sessions if self.embargo_sessions is None else self.embargo_sessions

PORTFOLIO_METHODS: tuple[str, ...] = (
    "mean_variance",
    "min_volatility",
    "hrp",
    "risk_parity",
    "cvar",
    "top_k",
)
"""Names of the portfolio construction methods (``QUANT_PORTFOLIO__OPTIMIZER``)."""


class PortfolioSettings(_Section):
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
        0.0, ge=0, description="cost per unit of sum(|w - w_current|) in the optimiser's objective"
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
        description="expected return = score_ic x annual vol x cross-sectional z-score of the score",
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
        if len(set(self.fallback_chain)) != len(self.fallback_chain):
            raise ValueError(f"fallback_chain {list(self.fallback_chain)} lists a step twice")
        return self


class QualitySettings(_Section):
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


class ExecutionSettings(_Section):
    """Order generation, the simulator broker and the broker adapters' retry policy."""

    min_order_notional_usd: float = Field(
        100.0, ge=0, description="orders with a smaller qty x reference price are dropped, USD"
    )
    max_adv_participation: float = Field(
        0.08, gt=0, le=1, description="largest order as a share of average daily volume (shares)"
    )
    adv_sessions: int = Field(
        20, ge=1, le=260, description="sessions of the average daily volume"
    )
    lot_sizes: dict[str, int] = Field(
        default_factory=dict, description="per symbol: order sizes are multiples of this (default 1)"
    )
    cash_buffer: float = Field(
        0.002,
        ge=0,
        lt=1,
        description="fraction of equity buys leave unspent (slippage and commission headroom)",
    )
    strategy: str = Field("daily", description="strategy tag of generated orders (sidecar overrides)")
    fill_auction: Literal["open", "close"] = Field(
        "open",
        description="sim: orders of session D fill at the next session's open (opg) or close (cls)",
    )
    sim_initial_cash_usd: float = Field(
        1_000_000.0, gt=0, description="cash of a new simulator account, USD"
    )
    sim_slippage_bps: float = Field(5.0, ge=0, description="sim: fill price moved against the order")
    sim_commission_per_share_usd: float = Field(
        0.005, ge=0, description="sim: commission per filled share, USD"
    )
    sim_max_participation: float = Field(
        0.1, gt=0, le=1, description="sim: largest share of an auction's volume one symbol fills"
    )
    broker_max_attempts: int = Field(
        5, ge=1, le=20, description="alpaca/ibkr: attempts per request (429, 5xx, timeouts)"
    )
    broker_backoff_s: float = Field(
        0.5, ge=0, description="alpaca/ibkr: first wait between attempts, doubled each time"
    )
    broker_max_backoff_s: float = Field(8.0, ge=0, description="alpaca/ibkr: longest wait")
    broker_timeout_s: float = Field(
        10.0, gt=0, le=300, description="alpaca/ibkr: timeout of one request or connection"
    )
    ib_client_id: int = Field(
        18, ge=0, description="client id of the order connection to the IB API (not the data one)"
    )

    @field_validator("lot_sizes", mode="after")
    @classmethod
    def _positive_lots(cls, value: dict[str, int]) -> dict[str, int]:
        bad = {k: v for k, v in value.items() if v < 1}
        if bad:
            raise ValueError(f"lot sizes must be >= 1, got {bad}")
        return {k.strip().upper(): v for k, v in value.items()}


class BacktestSettings(_Section):
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


class Settings(BaseSettings):
    """Settings of the pipeline, the sidecar and the command line."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=_NESTED,
        frozen=True,
        extra="forbid",
        case_sensitive=False,
    )

    home: Path = Field(
        Path(".quant"),
        description="state directory: embedded database, Airflow home, reports, models",
    )
    database_url: str | None = Field(
        None,
        validation_alias=AliasChoices("DATABASE_URL", "QUANT_DATABASE_URL"),
        description="PostgreSQL URL; unset means the embedded server under QUANT_HOME",
    )
    provider: str = Field(
        "synthetic",
        description=(
            "market-data provider, or a comma-separated failover chain tried in order per "
            "symbol (e.g. 'alpaca,csv,synthetic'); names: " + ", ".join(PROVIDER_NAMES)
        ),
    )
    provider_symbols: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description=(
            "tickers to fetch from providers that cannot list a universe (alpaca, ibkr), "
            "comma-separated; empty = the universe of the chain's other providers"
        ),
    )
    csv_dir: Path | None = Field(
        None, description="folder of the csv provider: bars*.csv|parquet, symbols.csv, ..."
    )
    alpaca_data_url: str | None = Field(
        None, description="base URL of Alpaca's market-data API (unset = Alpaca's own)"
    )
    alpaca_feed: Literal["iex", "sip", "delayed_sip", "otc", "boats", "overnight"] = Field(
        "iex", description="Alpaca stock data feed of the daily bars"
    )
    ib_host: str = Field("127.0.0.1", description="host of the IB Gateway / TWS API")
    ib_port: int = Field(
        4002, ge=1, le=65535, description="port of the IB API (4002 = Gateway paper)"
    )
    ib_client_id: int = Field(
        17, ge=0, description="client id of the market-data connection to the IB API"
    )
    broker: Literal["sim", "alpaca", "ibkr"] = Field("sim", description="broker adapter")
    trading_mode: Literal["paper", "live"] = Field(
        "paper", description="paper (default) or live; live needs explicit broker credentials"
    )
    sidecar_url: str = Field("http://127.0.0.1:8765", description="base URL of the risk sidecar")
    sidecar_token: SecretStr | None = Field(
        None, description="bearer token for the sidecar's kill and resume endpoints"
    )
    sidecar_bind_host: str = Field(
        "127.0.0.1", description="address the sidecar listens on (the port is sidecar_url's)"
    )
    sidecar_timeout_s: float = Field(
        2.0, gt=0, le=60, description="client timeout of one request to the sidecar, seconds"
    )
    sidecar_max_body_bytes: int = Field(
        4_000_000, ge=1_024, description="largest request body the sidecar accepts"
    )
    sidecar_max_orders: int = Field(
        10_000, ge=1, description="most orders in one POST /v1/check"
    )
    exchange: str = Field("XNYS", description="exchange calendar (exchange-calendars code)")
    run_after_close: time = Field(
        time(1, 0), description="how long after the close a daily run is scheduled (HH:MM)"
    )
    history_sessions: int = Field(
        300,
        ge=20,
        le=10_000,
        description="sessions of history ingested before a run date when they are missing",
    )
    synthetic: SyntheticSettings = Field(
        default_factory=SyntheticSettings, description="the built-in synthetic market (QUANT_SYNTHETIC__*)"
    )
    quality: QualitySettings = Field(
        default_factory=QualitySettings, description="data-quality gates and their thresholds (QUANT_QUALITY__*)"
    )
    risk: RiskSettings = Field(
        default_factory=RiskSettings, description="pre-trade risk limits and the kill switch (QUANT_RISK__*)"
    )
    portfolio: PortfolioSettings = Field(
        default_factory=PortfolioSettings, description="portfolio construction (QUANT_PORTFOLIO__*)"
    )
    model: ModelSettings = Field(
        default_factory=ModelSettings, description="model training, retraining and prediction (QUANT_MODEL__*)"
    )
    execution: ExecutionSettings = Field(
        default_factory=ExecutionSettings, description="order generation and fills (QUANT_EXECUTION__*)"
    )
    backtest: BacktestSettings = Field(
        default_factory=BacktestSettings, description="the research backtest (QUANT_BACKTEST__*)"
    )

    @field_validator("home", mode="after")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("provider", mode="after")
    @classmethod
    def _check_provider(cls, value: str) -> str:
        names = [n.strip().lower() for n in value.split(",")]
        if not names or any(not n for n in names):
            raise ValueError("must be a provider name or a comma-separated list of names")
        unknown = [n for n in names if n not in PROVIDER_NAMES]
        if unknown:
            raise ValueError(
                f"unknown provider(s) {unknown}; known: {', '.join(PROVIDER_NAMES)}"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"provider {names} lists a name twice")
        return ",".join(names)

    @field_validator("provider_symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part for part in value.split(","))
        return value

    @field_validator("provider_symbols", mode="after")
    @classmethod
    def _upper_provider_symbols(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = [s.strip().upper() for s in value if s.strip()]
        return tuple(dict.fromkeys(cleaned))

    @field_validator("csv_dir", mode="after")
    @classmethod
    def _absolute_csv_dir(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser().resolve()

    @field_validator("alpaca_data_url", mode="after")
    @classmethod
    def _check_alpaca_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("database_url", mode="after")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("postgresql://", "postgres://", "postgresql+psycopg2://")):
            raise ValueError("must be a PostgreSQL URL starting with postgresql://")
        return value

    @field_validator("sidecar_url", mode="after")
    @classmethod
    def _check_sidecar_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("exchange", mode="after")
    @classmethod
    def _check_exchange(cls, value: str) -> str:
        import exchange_calendars as xcals

        if value not in xcals.get_calendar_names(include_aliases=True):
            raise ValueError(f"unknown exchange calendar {value!r}")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("QUANT_CONFIG")
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    # -- derived paths -----------------------------------------------------------------
    @property
    def providers(self) -> tuple[str, ...]:
        """The market-data provider names of ``provider``, in failover order."""
        return tuple(self.provider.split(","))

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def pgdata_dir(self) -> Path:
        return self.home / "pgdata"

    @property
    def sidecar_port(self) -> int:
        """TCP port of the sidecar, from ``sidecar_url``."""
        from urllib.parse import urlsplit

        parts = urlsplit(self.sidecar_url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def sidecar_token_file(self) -> Path:
        """Where the local demo writes the sidecar token it generates."""
        return self.home / "sidecar.token"


def _env_name(loc: tuple[Any, ...]) -> str:
    """The environment variable that sets the field at ``loc``."""
    parts = [str(p) for p in loc if not isinstance(p, int)]
    if parts and parts[0].upper() == "DATABASE_URL":
        return "DATABASE_URL"
    return f"{ENV_PREFIX}{_NESTED.join(p.upper() for p in parts)} ({'.'.join(parts)})"


def _unknown_env_vars() -> list[str]:
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    known |= {"QUANT_CONFIG", "QUANT_DATABASE_URL"}
    unknown = []
    for key in os.environ:
        upper = key.upper()
        if not upper.startswith(ENV_PREFIX) or upper in known:
            continue
        head = upper.split(_NESTED, 1)[0]
        if _NESTED in upper and head in known:
            continue  # nested field: validated by the model itself
        unknown.append(key)
    return sorted(unknown)


def load_settings(**overrides: Any) -> Settings:
    """Build and validate the settings.

    Raises
    ------
    ConfigurationError
        A value is invalid or a ``QUANT_*`` variable is unknown; the message
        names the setting.
    """
    unknown = _unknown_env_vars()
    if unknown:
        raise ConfigurationError(
            "unknown setting(s) in the environment: "
            + ", ".join(unknown)
            + " (see docs/reference/configuration.md)"
        )
    config_file = os.environ.get("QUANT_CONFIG")
    if config_file and not Path(config_file).is_file():
        raise ConfigurationError(f"QUANT_CONFIG: no such file {config_file!r}")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = _env_name(err["loc"])
            value = err.get("input")
            shown = "" if isinstance(value, dict) else f"={value!r}"
            problems.append(f"{name}{shown}: {err['msg']}")
        raise ConfigurationError("invalid setting: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, loaded once (tests call ``get_settings.cache_clear()``)."""
    return load_settings()
