"""quant: a daily batch trading pipeline on Apache Airflow 3 with a risk sidecar."""

from quant.config import Settings, get_settings, load_settings
from quant.exceptions import ConfigurationError, QuantError

__all__ = ["ConfigurationError", "QuantError", "Settings", "get_settings", "load_settings"]
__version__ = "0.1.0"
