"""Data-quality gates (Great Expectations) in front of every stage that spends money."""

from quant.quality._checks import Asset, Check, assets, checks
from quant.quality._run import (
    CheckResult,
    DataQualityError,
    QualityReport,
    data_docs_dir,
    run_data_quality,
)

__all__ = [
    "Asset",
    "Check",
    "CheckResult",
    "DataQualityError",
    "QualityReport",
    "assets",
    "checks",
    "data_docs_dir",
    "run_data_quality",
]
