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
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from quant.exceptions import ConfigurationError

__all__ = [
    "OverrideSettings",
    "RiskSettings",
    "Settings",
    "SyntheticSettings",
    "get_settings",
    "load_settings",
]

ENV_PREFIX = "QUANT_"
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
    provider: Literal["synthetic", "csv", "alpaca", "ibkr"] = Field(
        "synthetic", description="market-data provider"
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
    synthetic: SyntheticSettings = Field(default_factory=SyntheticSettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)

    @field_validator("home", mode="after")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

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
            + " (see the configuration reference in README.md)"
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
