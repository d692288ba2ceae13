"""The model section of the settings: validation, environment names, documentation."""

from __future__ import annotations

from pathlib import Path

import pytest

from quant.config import ModelSettings, load_settings

HOOKS = Path(__file__).resolve().parents[3] / "docs" / "_hooks.py"


def test_model_settings_when_environment_sets_nested_values_then_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QUANT_MODEL__HORIZON_SESSIONS", "20")
    monkeypatch.setenv("QUANT_MODEL__OBJECTIVE", "lambdarank")
    monkeypatch.setenv("QUANT_MODEL__FEATURES", '["return_5d", "volatility_20d"]')
    settings = load_settings()
    assert settings.model.horizon_sessions == 20
    assert settings.model.embargo == 20
    assert settings.model.objective == "lambdarank"
    assert settings.model.features == ("return_5d", "volatility_20d")




def test_model_settings_when_unknown_field_then_refused() -> None:
    with pytest.raises(ValueError, match="extra"):
        ModelSettings(horizon=5)


def test_model_settings_when_selection_window_longer_than_a_fold_then_refused() -> None:
    # the window lies in a new model's last validation fold: longer, nothing could be promoted
    with pytest.raises(ValueError, match="selection_sessions"):
        ModelSettings(selection_sessions=30, validation_sessions=20)
    assert ModelSettings(selection_sessions=20, validation_sessions=20).selection_sessions == 20


def _configuration_reference() -> str:
    """The configuration reference page as the docs site renders it (from Settings)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_hooks", HOOKS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.settings_reference()


def test_model_settings_when_reference_read_then_every_field_documented() -> None:
    text = _configuration_reference()
    missing = [
        name for name in ModelSettings.model_fields if f"`QUANT_MODEL__{name.upper()}`" not in text
    ]
    assert missing == []
