"""Settings: defaults, validation messages naming the setting, YAML overlay."""

from __future__ import annotations

from pathlib import Path

import pytest

from quant.config import load_settings
from quant.exceptions import ConfigurationError


def test_load_settings_when_environment_minimal_then_paper_sim_synthetic(quant_home: Path) -> None:
    settings = load_settings()
    assert settings.trading_mode == "paper"
    assert settings.broker == "sim"
    assert settings.provider == "synthetic"
    assert settings.home == quant_home.resolve()
    assert settings.airflow_home == quant_home.resolve() / "airflow"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("QUANT_BROKER", "robinhood"),
        ("QUANT_TRADING_MODE", "yolo"),
        ("QUANT_PROVIDER", "bloomberg"),
        ("QUANT_SIDECAR_URL", "ftp://x"),
        ("QUANT_EXCHANGE", "NOPE"),
        ("QUANT_SYNTHETIC__SYMBOLS", "1"),
        ("DATABASE_URL", "mysql://localhost/db"),
        ("QUANT_MODEL__HORIZON_SESSIONS", "0"),
        ("QUANT_MODEL__TARGET", "raw"),
        ("QUANT_MODEL__RETRAIN_SCHEDULE", "hourly"),
        ("QUANT_MODEL__DRIFT_THRESHOLD", "-1"),
        ("QUANT_MODEL__MARTS_SCHEMA", "marts; drop table x"),
    ],
)
def test_load_settings_when_value_invalid_then_error_names_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert variable in str(info.value)
    assert value in str(info.value)


def test_load_settings_when_unknown_quant_variable_then_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QUANT_BROKR", "sim")
    with pytest.raises(ConfigurationError, match="QUANT_BROKR"):
        load_settings()


@pytest.fixture()
def config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A quant.yaml that QUANT_CONFIG points at (empty until the test writes it)."""
    config = tmp_path / "quant.yaml"
    config.write_text("")
    monkeypatch.setenv("QUANT_CONFIG", str(config))
    return config


def test_load_settings_when_yaml_file_then_values_used_and_env_wins(
    monkeypatch: pytest.MonkeyPatch, config_file: Path
) -> None:
    config_file.write_text("broker: alpaca\nsynthetic:\n  symbols: 120\n  seed: 3\n")
    settings = load_settings()
    assert settings.broker == "alpaca"
    assert settings.synthetic.symbols == 120
    monkeypatch.setenv("QUANT_BROKER", "ibkr")
    assert load_settings().broker == "ibkr"


def test_load_settings_when_yaml_has_unknown_key_then_refused(config_file: Path) -> None:
    config_file.write_text("brokerr: alpaca\n")
    with pytest.raises(ConfigurationError, match="brokerr"):
        load_settings()


def test_settings_when_assigned_then_frozen() -> None:
    settings = load_settings()
    with pytest.raises(Exception, match="frozen"):
        settings.broker = "alpaca"  # type: ignore[misc]


def test_sidecar_token_when_set_then_not_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUANT_SIDECAR_TOKEN", "s3cret-token-value")
    settings = load_settings()
    assert settings.sidecar_token is not None
    assert settings.sidecar_token.get_secret_value() == "s3cret-token-value"
    assert "s3cret-token-value" not in repr(settings)
