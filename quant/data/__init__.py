"""Market-data providers: raw bars, reference data and corporate actions.

Every provider implements :class:`MarketDataProvider`; :func:`get_provider`
builds one by name. The synthetic provider is the offline default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from quant.data._base import (
    ACTION_COLUMNS,
    ACTION_DTYPES,
    BAR_COLUMNS,
    BAR_DTYPES,
    SYMBOL_COLUMNS,
    SYMBOL_DTYPES,
    MarketDataProvider,
)
from quant.data._ingest import IngestResult, ingest_bars, provider_from_settings
from quant.data._synthetic import SyntheticProvider
from quant.exceptions import ConfigurationError

__all__ = [
    "ACTION_COLUMNS",
    "ACTION_DTYPES",
    "BAR_COLUMNS",
    "BAR_DTYPES",
    "IngestResult",
    "PROVIDERS",
    "SYMBOL_COLUMNS",
    "SYMBOL_DTYPES",
    "MarketDataProvider",
    "SyntheticProvider",
    "get_provider",
    "ingest_bars",
    "provider_from_settings",
]

PROVIDERS: dict[str, Callable[..., MarketDataProvider]] = {
    SyntheticProvider.name: SyntheticProvider,
}
"""Provider name to constructor; add an entry to support a new provider."""


def get_provider(name: str, **kwargs: Any) -> MarketDataProvider:
    """Build the market-data provider called ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`PROVIDERS`, e.g. ``"synthetic"``.
    **kwargs
        Passed to the provider's constructor (for the synthetic provider:
        ``symbols``, ``seed``, ``signal_strength``, ``exchange``, ``origin``).

    Returns
    -------
    MarketDataProvider

    Raises
    ------
    ConfigurationError
        If no provider has that name, or the constructor rejects a keyword.
    """
    try:
        factory = PROVIDERS[name]
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        raise ConfigurationError(
            f"unknown market-data provider {name!r}; known providers: {known}"
        ) from None
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise ConfigurationError(f"bad arguments for provider {name!r}: {exc}") from exc
