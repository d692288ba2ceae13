"""Data-quality gates (Great Expectations) in front of every stage that spends money."""

from quant.quality._checks import Asset, Check, assets, checks
from quant.quality._run import (
    CheckResult,
    DataQualityError,
    QualityReport,
    data_docs_dir,
    record_results,
    run_data_quality,
)
from quant.quality._screen import QualityScreen, screen_sessions

__all__ = [
    "Asset",
    "Check",
    "CheckResult",
    "DataQualityError",
    "QualityReport",
    "QualityScreen",
    "assets",
    "checks",
    "data_docs_dir",
    "record_results",
    "run_data_quality",
    "screen_sessions",
]
