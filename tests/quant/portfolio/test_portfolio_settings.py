"""The ``portfolio`` section of the settings: defaults, environment, refusal of bad values."""

from __future__ import annotations

import pytest

from quant.config import PortfolioSettings, load_settings
from quant.exceptions import ConfigurationError


def test_portfolio_settings_when_defaults_then_documented_limits() -> None:
    s = load_settings().portfolio
    assert s.optimizer == "mean_variance"
    assert s.long_only is True
    assert s.max_weight == 0.10
    assert s.max_sector_weight == 0.25
    assert s.vol_target == 0.10
    assert s.risk_model == "ledoit_wolf"
    assert s.fallback_chain == ("relax_turnover", "hrp", "hold")


def test_portfolio_settings_when_set_in_environment_then_read(monkeypatch) -> None:
    monkeypatch.setenv("QUANT_PORTFOLIO__OPTIMIZER", "hrp")
    monkeypatch.setenv("QUANT_PORTFOLIO__TURNOVER_CAP", "0.3")
    monkeypatch.setenv("QUANT_PORTFOLIO__FALLBACK_CHAIN", '["hold"]')
    s = load_settings().portfolio
    assert (s.optimizer, s.turnover_cap, s.fallback_chain) == ("hrp", 0.3, ("hold",))


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("QUANT_PORTFOLIO__MAX_WEIGHT", "1.5", "QUANT_PORTFOLIO__MAX_WEIGHT"),
        ("QUANT_PORTFOLIO__OPTIMIZER", "magic", "QUANT_PORTFOLIO__OPTIMIZER"),
        ("QUANT_PORTFOLIO__CASH_BUFFER", "-0.1", "QUANT_PORTFOLIO__CASH_BUFFER"),
        ("QUANT_PORTFOLIO__FALLBACK_CHAIN", '["pray"]', "QUANT_PORTFOLIO__FALLBACK_CHAIN"),
        ("QUANT_PORTFOLIO__MIN_POSITION", "0.2", "min_position"),
    ],
)
def test_portfolio_settings_when_value_bad_then_error_names_setting(
    monkeypatch, env: str, value: str, named: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigurationError, match=named):
        load_settings()


def test_portfolio_settings_when_unknown_field_then_refused() -> None:
    with pytest.raises(ValueError, match="extra"):
        PortfolioSettings(max_weigth=0.2)


def test_portfolio_settings_when_net_band_inverted_then_refused() -> None:
    with pytest.raises(ValueError, match="min_net_exposure"):
        PortfolioSettings(long_only=False, min_net_exposure=0.2, max_net_exposure=0.1)
