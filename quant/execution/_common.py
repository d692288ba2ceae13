"""What the execution stages share: settings and dates, the run's broker, the run summary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from quant.exceptions import ExecutionError
from quant.pipeline import DEFAULT_DAG_ID
from quant.typing import TimeInForce

if TYPE_CHECKING:
    from quant.config import Settings
    from quant.typing import Broker

__all__ = [
    "DEFAULT_DAG_ID",
    "BrokerHandle",
    "calendar",
    "resolve_settings",
    "run_info",
    "time_in_force",
]



def resolve_settings(settings: Settings | None) -> Settings:
    """``settings``, or the process-wide ones."""
    from quant.config import get_settings

    return settings or get_settings()


def calendar(settings: Settings) -> Any:
    from quant.calendar import get_calendar

    return get_calendar(settings.exchange)


def time_in_force(settings: Settings) -> TimeInForce:
    """Orders fill at the next opening or closing auction (``QUANT_EXECUTION__FILL_AUCTION``)."""
    return TimeInForce.OPG if settings.execution.fill_auction == "open" else TimeInForce.CLS


def run_info(run: Mapping[str, Any]) -> dict[str, Any]:
    """The part of every stage summary that says which run, broker and account."""
    return {
        "logical_date": run["logical_date"].isoformat(),
        "run_id": run["run_id"],
        "broker": run["broker"],
        "account": run["account"],
        "trading_mode": run["trading_mode"],
        "risk_check": run["risk_check"],
        "namespace": run["namespace"],
        "dry_run": bool(run["dry_run"]),
    }


def _check_broker(broker: Broker, name: str, account: str) -> None:
    """Refuse a broker object that is not the one the safety rules chose."""
    if broker.name != name:
        raise ExecutionError(
            f"this run must use the {name!r} broker (account {account!r}), "
            f"got a {broker.name!r} adapter: refusing"
        )
    if name == "sim" and getattr(broker, "account_name", account) != account:
        raise ExecutionError(
            f"this run must use simulator account {account!r}, "
            f"got {getattr(broker, 'account_name', None)!r}: refusing"
        )


class BrokerHandle:
    """The run's broker: the one passed in, or one opened (and closed) here."""

    def __init__(
        self,
        settings: Settings,
        name: str,
        account: str,
        broker: Broker | None,
        credentials: Mapping[str, Any] | None = None,
    ) -> None:
        from quant.execution._open import open_broker

        self.owned = broker is None
        self.broker = broker or open_broker(
            settings,
            broker=name,
            account=account if name == "sim" else None,
            credentials=credentials if name != "sim" else None,
        )
        _check_broker(self.broker, name, account)

    def __enter__(self) -> Broker:
        return self.broker

    def __exit__(self, *exc: object) -> None:
        close = getattr(self.broker, "close", None)
        if self.owned and close is not None:
            close()
