"""The safety rules of choose_broker, over every combination of their inputs."""

from __future__ import annotations

import itertools
from datetime import date

import pytest

from quant.config import Settings
from quant.exceptions import TradingModeError
from quant.execution import BrokerChoice, choose_broker, client_order_id, order_namespace

LATEST = date(2026, 11, 20)
OLD = date(2026, 11, 13)
RUN_TYPES = ("scheduled", "manual", "backfill", "asset_triggered", "test")
BROKERS = ("sim", "alpaca", "ibkr")


def settings(broker: str, mode: str) -> Settings:
    return Settings(broker=broker, trading_mode=mode)


CASES = list(
    itertools.product(
        ("paper", "live"),  # trading mode
        BROKERS,  # QUANT_BROKER
        (None, *BROKERS),  # the run's broker param
        RUN_TYPES,
        (LATEST, OLD),  # the run's session
        (LATEST, None),  # the latest session as known (None: unknown)
    )
)


def expected(mode, configured, requested, run_type, session, latest):  # noqa: ANN001, ANN201
    """The rules, restated independently of the implementation."""
    broker = requested or configured
    if run_type == "backfill":
        return "refused" if mode == "live" else ("sim", False, "in_process", "paper")
    if latest is None or session != latest:
        return ("sim", False, "in_process", "paper")
    if mode == "live" and broker == "sim":
        return "refused"
    return (broker, True, "sidecar", "paper" if broker == "sim" else mode)


@pytest.mark.parametrize(
    ("mode", "configured", "requested", "run_type", "session", "latest"), CASES
)
def test_choose_broker_over_all_inputs_matches_the_safety_rules(
    mode: str, configured: str, requested: str | None, run_type: str, session: date, latest
) -> None:  # noqa: ANN001
    want = expected(mode, configured, requested, run_type, session, latest)
    call = dict(
        session=session,
        run_type=run_type,
        requested_broker=requested,
        latest_session=latest,
        backfill_id=9,
        run_id="manual__x",
    )
    if want == "refused":
        with pytest.raises(TradingModeError):
            choose_broker(settings(configured, mode), **call)
        return
    choice = choose_broker(settings(configured, mode), **call)
    assert isinstance(choice, BrokerChoice)
    assert (
        choice.broker,
        choice.is_default_account,
        choice.risk_check,
        choice.trading_mode,
    ) == want
    # a backfill or an old date never reaches a broker account, and never the live sidecar
    if run_type == "backfill" or session != latest:
        assert choice.broker == "sim" and choice.account != "paper"
    if choice.trading_mode == "live":
        assert choice.broker in ("alpaca", "ibkr") and run_type != "backfill"


def test_choose_broker_when_backfill_then_account_per_backfill() -> None:
    s = settings("alpaca", "paper")
    one = choose_broker(s, session=OLD, run_type="backfill", latest_session=LATEST, backfill_id=1)
    two = choose_broker(s, session=OLD, run_type="backfill", latest_session=LATEST, backfill_id=2)
    assert (one.account, two.account) == ("backfill-1", "backfill-2")


def test_choose_broker_when_unknown_broker_or_run_type_then_refused() -> None:
    s = settings("sim", "paper")
    with pytest.raises(TradingModeError, match="unknown broker"):
        choose_broker(s, session=LATEST, run_type="scheduled", requested_broker="etrade")
    with pytest.raises(TradingModeError, match="unknown run type"):
        choose_broker(s, session=LATEST, run_type="nightly", latest_session=LATEST)


def test_client_order_id_when_same_inputs_then_same_id_and_any_change_gives_another() -> None:
    base = client_order_id("daily_trading", LATEST, "AAPL", "buy")
    assert base == client_order_id("daily_trading", LATEST, "aapl", "buy")
    others = {
        client_order_id("other_dag", LATEST, "AAPL", "buy"),
        client_order_id("daily_trading", OLD, "AAPL", "buy"),
        client_order_id("daily_trading", LATEST, "MSFT", "buy"),
        client_order_id("daily_trading", LATEST, "AAPL", "sell"),
        client_order_id(
            order_namespace("daily_trading", "backfill-1", default_account=False),
            LATEST,
            "AAPL",
            "buy",
        ),
    }
    assert base not in others and len(others) == 5
    assert len(base) <= 48 and base.startswith("q20261120-AAPL-B-")
