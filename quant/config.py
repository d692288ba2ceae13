"""One settings object for the whole package.

Values come, highest priority first, from keyword arguments, the environment
(``QUANT_*`` variables and ``DATABASE_URL``) and an optional YAML file named by
``QUANT_CONFIG``. Nested sections are set in YAML or with ``__`` in the
variable name (``QUANT_SYNTHETIC__SYMBOLS=500``).

Every value is checked when the object is built: a bad value raises
:class:`~quant.exceptions.ConfigurationError` naming the setting, and an
unknown ``QUANT_*`` variable is refused rather than silently ignored.

The section models (:class:`RiskSettings`, :class:`PortfolioSettings`, ...)
are defined in ``quant._settings``, one module per section, and importable
from here.
"""

from __future__ import annotations

import os
from datetime import date, time
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from quant._settings import (
    PORTFOLIO_METHODS,
    BacktestSettings,
    ExecutionSettings,
    ModelSettings,
    OverrideSettings,
    PortfolioSettings,
    QualitySettings,
    RiskSettings,
    SyntheticSettings,
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
    start_date: date = Field(
        date(2024, 1, 1),
        description=(
            "first session the daily_trading DAG has runs for (its start_date, YYYY-MM-DD); "
            "move it earlier to run or backfill older sessions (catchup stays off)"
        ),
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
