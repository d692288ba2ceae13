"""Market-data providers: raw bars, reference data and corporate actions.

Every provider implements :class:`MarketDataProvider`; :func:`get_provider`
builds one by name, :class:`FailoverProvider` chains several, and
:func:`ingest_bars` loads what they deliver into the ``raw`` schema. The
synthetic provider is the offline default.
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
from quant.exceptions import ConfigurationError

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


def _alpaca(**kwargs: Any) -> MarketDataProvider:
    from quant.data._alpaca import AlpacaProvider

    return AlpacaProvider(**kwargs)


def _ibkr(**kwargs: Any) -> MarketDataProvider:
    from quant.data._ibkr import IbkrProvider

    return IbkrProvider(**kwargs)


PROVIDERS: dict[str, Callable[..., MarketDataProvider]] = {
    SyntheticProvider.name: SyntheticProvider,
    CsvProvider.name: CsvProvider,
    "alpaca": _alpaca,
    "ibkr": _ibkr,
}
"""Provider name to constructor; add an entry to support a new provider.

The ``alpaca`` and ``ibkr`` constructors import their SDK on first use.
"""


def get_provider(name: str, **kwargs: Any) -> MarketDataProvider:
    """Build the market-data provider called ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`PROVIDERS`, e.g. ``"synthetic"``.
    **kwargs
        Passed to the provider's constructor (for the synthetic provider:
        ``symbols``, ``seed``, ``signal_strength``, ``exchange``, ``origin``;
        csv: ``directory``, ``exchange``; alpaca: ``symbols``, ``data_url``,
        ``feed``, ...; ibkr: ``symbols``, ``host``, ``port``, ``client_id``, ...).

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
