"""Fixtures of the model tests: synthetic feature and label frames, small model settings."""

from __future__ import annotations

import pytest
from model_markets import Market, market

from quant.config import ModelSettings


@pytest.fixture(scope="session")
def signal_market() -> Market:
    """80 names with the planted short-term reversal at strength 0.1."""
    return market(0.1)


@pytest.fixture(scope="session")
def null_market() -> Market:
    """80 names with no predictable component."""
    return market(0.0)


@pytest.fixture(scope="session")
def model_settings() -> ModelSettings:
    """Small validation folds and leaves for 80 names and about 420 sessions."""
    return ModelSettings(
        validation_sessions=40,
        min_data_in_leaf=50,
        max_feature_null_share=0.5,
        num_boost_round=200,
    )
