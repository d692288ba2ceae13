"""Open the configured broker adapter (``sim``, ``alpaca``, ``ibkr``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from quant.exceptions import ConfigurationError

if TYPE_CHECKING:
    from quant.config import Settings
    from quant.typing import Broker

__all__ = ["open_broker"]


def open_broker(
    settings: Settings | None = None,
    *,
    broker: str | None = None,
    account: str | None = None,
    credentials: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Broker:
    """The adapter named ``broker`` (default ``settings.broker``).

    Parameters
    ----------
    settings : Settings, optional
    broker : {"sim", "alpaca", "ibkr"}, optional
    account : str, optional
        Simulator account (default ``paper``); ignored by the other adapters.
    credentials : mapping, optional
        ``alpaca``: ``api_key``, ``secret_key`` and optionally ``base_url``
        (e.g. resolved from an Airflow connection by the DAG task); default the
        ``APCA_*`` environment variables. ``ibkr``: ``host``, ``port``,
        ``client_id`` overrides.
    **kwargs
        Passed to the adapter's constructor.

    Raises
    ------
    ConfigurationError
        Unknown broker, or credentials missing.
    """
    from quant.config import get_settings

    settings = settings or get_settings()
    name = broker or settings.broker
    ex = settings.execution
    creds = dict(credentials or {})
    if name == "sim":
        from quant.venues.sim import SimBroker

        options = {
            "account": account or "paper",
            "initial_cash_usd": ex.sim_initial_cash_usd,
            "slippage_bps": ex.sim_slippage_bps,
            "commission_per_share_usd": ex.sim_commission_per_share_usd,
            "max_participation": ex.sim_max_participation,
        } | kwargs
        return SimBroker.open(settings, **options)
    # what the real venues' adapters take alike: the trading mode and the retry bounds
    venue = {
        "paper": settings.trading_mode == "paper",
        "max_attempts": ex.broker_max_attempts,
        "backoff_s": ex.broker_backoff_s,
        "max_backoff_s": ex.broker_max_backoff_s,
        "timeout_s": ex.broker_timeout_s,
    }
    if name == "alpaca":
        from quant.venues.alpaca import AlpacaBroker

        options = {
            "api_key": creds.get("api_key"),
            "secret_key": creds.get("secret_key"),
            "base_url": creds.get("base_url"),
        }
        return AlpacaBroker(**(venue | options | kwargs))
    if name == "ibkr":
        from quant.venues.ibkr import IbkrBroker

        options = {
            "host": creds.get("host", settings.ib_host),
            "port": int(creds.get("port", settings.ib_port)),
            "client_id": int(creds.get("client_id", ex.ib_client_id)),
        }
        return IbkrBroker(**(venue | options | kwargs))
    raise ConfigurationError(f"QUANT_BROKER: unknown broker {name!r}; known: sim, alpaca, ibkr")
