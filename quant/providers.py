"""Market-data providers by name: those of :mod:`quant.data` and the venues'.

:func:`get_provider` builds the provider a name stands for (``QUANT_PROVIDER``
names one, or a failover chain of several); :data:`PROVIDERS` maps each name to
its constructor. This module sits above the providers it builds (the synthetic
and csv providers of :mod:`quant.data`, the ``alpaca`` and ``ibkr`` providers of
:mod:`quant.venues`) and below ingestion, which builds the configured providers
through it; :mod:`quant.data` re-exports both names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from quant.data._base import MarketDataProvider
from quant.data._csv import CsvProvider
from quant.data._synthetic import SyntheticProvider
from quant.exceptions import ConfigurationError

__all__ = ["PROVIDERS", "get_provider"]


def _alpaca(**kwargs: Any) -> MarketDataProvider:
    from quant.venues.alpaca import AlpacaProvider

    return AlpacaProvider(**kwargs)


def _ibkr(**kwargs: Any) -> MarketDataProvider:
    from quant.venues.ibkr import IbkrProvider

    return IbkrProvider(**kwargs)


PROVIDERS: dict[str, Callable[..., MarketDataProvider]] = {
    SyntheticProvider.name: SyntheticProvider,
    CsvProvider.name: CsvProvider,
    "alpaca": _alpaca,
    "ibkr": _ibkr,
}
"""Provider name to constructor; add an entry to support a new provider.

The ``alpaca`` and ``ibkr`` constructors import their venue (and its SDK) on first use.
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
