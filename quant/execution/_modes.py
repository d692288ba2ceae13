"""Which broker and account a run may use: the safety rules, as one pure function.

Rules, in order:

1. ``live`` trading is refused in backfill runs (:class:`TradingModeError`).
2. Backfill runs always fill with the simulator, on an account of their own
   (``backfill-<backfill id>``, or ``backfill`` without an id): they never reach a broker account, whatever
   ``QUANT_BROKER`` says.
3. A run whose logical date is not the latest closed session (a manual run of
   an old date) also fills with the simulator, on the account ``replay``.
4. Otherwise the requested broker (the DAG param, else ``QUANT_BROKER``) is
   used. ``live`` needs an explicit ``alpaca`` or ``ibkr`` broker
   (:class:`TradingModeError` for ``sim``); credentials are checked when the
   adapter is opened.

Runs on a separate simulator account check their orders with the risk engine
in process against that simulated book (``risk_check="in_process"``): they
never reach the live sidecar, whose book is the broker account's. Every
other run checks with the sidecar.

A separate simulator account carries its positions and cash from session to
session in the order the sessions are run; rerunning a session first rewinds
the account to the start of that session (``quant.execution.rewind_sim_account``), so a
backfill run twice gives the same orders and fills.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from quant.exceptions import TradingModeError

if TYPE_CHECKING:
    from quant.config import Settings

__all__ = ["BROKER_NAMES", "DEFAULT_SIM_ACCOUNT", "RUN_TYPES", "BrokerChoice", "choose_broker"]

BROKER_NAMES: tuple[str, ...] = ("sim", "alpaca", "ibkr")
RUN_TYPES: tuple[str, ...] = ("scheduled", "manual", "backfill", "asset_triggered", "test")
"""Airflow's run types (``DagRunType`` values); unknown ones are refused."""
DEFAULT_SIM_ACCOUNT = "paper"
"""The simulator account of normal runs (the sidecar's default broker book)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerChoice:
    """The broker a run uses and why.

    Attributes
    ----------
    broker : {"sim", "alpaca", "ibkr"}
    account : str
        Simulator account name, or ``"default"`` for the broker's account.
    trading_mode : {"paper", "live"}
    is_default_account : bool
        False for a separate simulator account (backfills, replays of old dates).
    risk_check : {"sidecar", "in_process"}
        Where the pre-trade check runs.
    reason : str
        Which rule decided, in words (recorded in ``ops.execution_runs``).
    """

    broker: Literal["sim", "alpaca", "ibkr"]
    account: str
    trading_mode: Literal["paper", "live"]
    is_default_account: bool
    risk_check: Literal["sidecar", "in_process"]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose_broker(
    settings: Settings,
    *,
    session: date,
    run_type: str,
    requested_broker: str | None = None,
    latest_session: date | None = None,
    backfill_id: str | int | None = None,
    run_id: str | None = None,
) -> BrokerChoice:
    """Apply the safety rules (module docstring) to one run.

    Parameters
    ----------
    settings : Settings
        ``broker`` and ``trading_mode`` are read.
    session : date
        The run's trading session (logical date).
    run_type : str
        Airflow's run type: ``scheduled``, ``manual``, ``backfill``, ...
    requested_broker : str, optional
        The run's ``broker`` param; overrides ``settings.broker``.
    latest_session : date, optional
        The latest closed session now; ``None`` (unknown) counts as "not the
        latest", so the run uses the simulator.
    backfill_id : str or int, optional
        Airflow's backfill id: names the backfill's simulator account.
    run_id : str, optional
        The DAG run (recorded; not part of the account's name).

    Raises
    ------
    TradingModeError
        Live trading in a backfill, live trading without an explicit broker,
        or an unknown broker or run type.
    """
    mode = settings.trading_mode
    requested = requested_broker if requested_broker is not None else settings.broker
    if requested not in BROKER_NAMES:
        raise TradingModeError(f"unknown broker {requested!r}; known: {', '.join(BROKER_NAMES)}")
    if run_type not in RUN_TYPES:
        raise TradingModeError(f"unknown run type {run_type!r}; known: {', '.join(RUN_TYPES)}")
    if run_type == "backfill":
        if mode == "live":
            raise TradingModeError(
                "QUANT_TRADING_MODE=live is refused in backfill runs: a backfill never "
                "reaches a broker account"
            )
        account = f"backfill-{backfill_id}" if backfill_id not in (None, "") else "backfill"
        return BrokerChoice(
            broker="sim",
            account=account,
            trading_mode="paper",
            is_default_account=False,
            risk_check="in_process",
            reason=f"backfill run: simulator account {account!r} (requested {requested!r})",
        )
    if latest_session is None or session != latest_session:
        account = "replay"
        why = (
            "latest session unknown"
            if latest_session is None
            else f"logical date {session} is not the latest session {latest_session}"
        )
        return BrokerChoice(
            broker="sim",
            account=account,
            trading_mode="paper",
            is_default_account=False,
            risk_check="in_process",
            reason=f"{why}: simulator account {account!r} (requested {requested!r})",
        )
    if mode == "live" and requested == "sim":
        raise TradingModeError(
            "QUANT_TRADING_MODE=live needs an explicit broker: set QUANT_BROKER=alpaca or "
            "ibkr (or the run's broker param) and its credentials"
        )
    if requested == "sim":
        return BrokerChoice(
            broker="sim",
            account=DEFAULT_SIM_ACCOUNT,
            trading_mode="paper",
            is_default_account=True,
            risk_check="sidecar",
            reason=f"latest session: simulator account {DEFAULT_SIM_ACCOUNT!r}",
        )
    return BrokerChoice(
        broker=requested,  # type: ignore[arg-type]
        account="default",
        trading_mode=mode,
        is_default_account=True,
        risk_check="sidecar",
        reason=f"latest session: {requested} {mode} account",
    )
