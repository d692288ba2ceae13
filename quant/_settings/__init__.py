"""The sections of :class:`quant.config.Settings`, one module per section.

Import them from :mod:`quant.config`, which re-exports every name here.
"""

from quant._settings._backtest import BacktestSettings
from quant._settings._execution import ExecutionSettings
from quant._settings._model import ModelSettings
from quant._settings._portfolio import PORTFOLIO_METHODS, PortfolioSettings
from quant._settings._quality import QualitySettings
from quant._settings._risk import OverrideSettings, RiskSettings
from quant._settings._synthetic import SyntheticSettings

__all__ = [
    "PORTFOLIO_METHODS",
    "BacktestSettings",
    "ExecutionSettings",
    "ModelSettings",
    "OverrideSettings",
    "PortfolioSettings",
    "QualitySettings",
    "RiskSettings",
    "SyntheticSettings",
]
