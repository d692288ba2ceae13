"""Market-data providers: raw bars, reference data and corporate actions.

Every provider implements :class:`MarketDataProvider`; :func:`get_provider`
builds one by name, :class:`FailoverProvider` chains several, and
:func:`ingest_bars` loads what they deliver into the ``raw`` schema. The
synthetic provider is the offline default; the venues' providers (``alpaca``,
``ibkr``) live in :mod:`quant.venues`.

This package spans two layers (``make lint`` checks them): the providers'
contract (``_base``), the failover chain and the synthetic and csv providers
sit below the venues, which build on them; ingestion sits above the venues, as
it builds the configured providers by name (:mod:`quant.providers`, whose
``get_provider`` and ``PROVIDERS`` are loaded here on first use). Code below
ingestion imports the modules it needs (``quant.data._base``, ...), not this
package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quant.data._base import (
    ACTION_COLUMNS,
    ACTION_DTYPES,
    BAR_COLUMNS,
    BAR_DTYPES,
    SYMBOL_COLUMNS,
    SYMBOL_DTYPES,
    MarketDataProvider,
)
from quant.data._chain import FailoverProvider, SourcedBars
from quant.data._csv import CsvProvider
from quant.data._ingest import (
    IngestResult,
    encode_bars_binary,
    ingest_bars,
    provider_from_settings,
    providers_from_settings,
)
from quant.data._synthetic import SyntheticProvider

if TYPE_CHECKING:
    from quant.providers import PROVIDERS, get_provider

__all__ = [
    "ACTION_COLUMNS",
    "ACTION_DTYPES",
    "BAR_COLUMNS",
    "BAR_DTYPES",
    "PROVIDERS",
    "SYMBOL_COLUMNS",
    "SYMBOL_DTYPES",
    "CsvProvider",
    "FailoverProvider",
    "IngestResult",
    "MarketDataProvider",
    "SourcedBars",
    "SyntheticProvider",
    "encode_bars_binary",
    "get_provider",
    "ingest_bars",
    "provider_from_settings",
    "providers_from_settings",
]


def __getattr__(name: str) -> Any:
    """``get_provider`` and ``PROVIDERS`` of :mod:`quant.providers`, imported on first use."""
    if name not in ("PROVIDERS", "get_provider"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import quant.providers

    value = getattr(quant.providers, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
