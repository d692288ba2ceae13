"""The ibkr broker adapter through the real ib_insync/ib_async client against the fake gateway."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from quant.exceptions import BrokerError, BrokerUnavailableError, ConfigurationError
from quant.execution import Broker, IbkrBroker, Order, OrderStatus, TimeInForce
from quant.testing import FakeIBGateway
from quant.testing.fake_ib import IN
from quant.testing.sidecar_process import free_port


@pytest.fixture()
def gateway() -> Iterator[FakeIBGateway]:
    fake = FakeIBGateway()
    fake.positions = {"AAA": (100.0, 50.5), "BBB": (-20.0, 120.0)}
    fake.account_values = {"NetLiquidation": 123_456.0, "TotalCashValue": 100_000.0}
    with fake:
        yield fake


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def wait_for(predicate, timeout_s: float = 5.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def order(cid: str, symbol: str = "AAA", side: str = "buy", tif=TimeInForce.OPG) -> Order:  # noqa: ANN001
    return Order(
        client_order_id=cid,
        symbol=symbol,
        side=side,
        qty_shares=25,
        time_in_force=tif,  # type: ignore[arg-type]
    )


def test_ibkr_adapter_when_connected_then_account_positions_and_orders_with_order_ref(
    gateway: FakeIBGateway,
) -> None:
    broker = IbkrBroker(port=gateway.port, client_id=31, timeout_s=5)
    try:
        assert isinstance(broker, Broker)
        account = broker.account()
        assert (account.equity_usd, account.cash_usd) == (123_456.0, 100_000.0)
        assert [(p.symbol, p.qty_shares, p.avg_price_usd) for p in broker.positions()] == [
            ("AAA", 100.0, 50.5),
            ("BBB", -20.0, 120.0),
        ]
        placed = broker.submit(order("q-1"))
        assert placed.client_order_id == "q-1"
        wait_for(lambda: len(gateway.orders) == 1)
        [sent] = gateway.orders.values()
        assert (sent["symbol"], sent["action"], sent["qty"]) == ("AAA", "BUY", 25.0)
        assert (sent["order_ref"], sent["tif"], sent["order_type"]) == ("q-1", "OPG", "MKT")
        moc = broker.submit(order("q-2", "CCC", "sell", TimeInForce.CLS))
        wait_for(lambda: len(gateway.orders) == 2)
        assert gateway.orders[int(moc.order_id)]["order_type"] == "MOC"
        wait_for(lambda: broker.order_by_client_id("q-1").status_reason == "Submitted")
        assert broker.order_by_client_id("q-1").status is OrderStatus.OPEN
        with pytest.raises(BrokerError, match="duplicate"):
            broker.submit(order("q-1"))
        assert len(gateway.orders) == 2
        assert broker.cancel_all() == 2
        wait_for(lambda: len(gateway.received_of(IN.REQ_GLOBAL_CANCEL)) == 1)
        wait_for(lambda: broker.open_orders() == [])
        assert {o["status"] for o in gateway.orders.values()} == {"Cancelled"}
        assert gateway.received_of(IN.START_API)[0][2] == "31"
    finally:
        broker.close()


def test_ibkr_adapter_when_gateway_down_then_bounded_backoff_and_clear_error() -> None:
    sleeps = Sleeps()
    broker = IbkrBroker(
        port=free_port(),
        max_attempts=3,
        backoff_s=0.01,
        max_backoff_s=1.0,
        timeout_s=1,
        sleep=sleeps,
    )
    with pytest.raises(BrokerUnavailableError, match="after 3 attempts"):
        broker.account()
    assert sleeps == [0.01, 0.02]


def test_ibkr_adapter_when_connection_drops_then_reconnects_with_backoff() -> None:
    port = free_port()
    gateway = FakeIBGateway(port=port)
    gateway.account_values = {"NetLiquidation": 10.0, "TotalCashValue": 4.0}
    started: list[FakeIBGateway] = []

    def sleep_then_start(seconds: float) -> None:  # the gateway comes back while we wait
        if not started:
            started.append(gateway.start())

    broker = IbkrBroker(
        port=port, max_attempts=4, backoff_s=0.01, timeout_s=2, sleep=sleep_then_start
    )
    try:
        assert broker.account().equity_usd == 10.0  # first attempt refused, second connects
        assert broker.connects == 1
        gateway.stop()
        broker._worker.submit(broker._ib.disconnect).result()  # the link drops
        gateway2 = FakeIBGateway(port=port)
        gateway2.account_values = {"NetLiquidation": 11.0, "TotalCashValue": 4.0}
        with gateway2:
            assert broker.account().equity_usd == 11.0
            assert broker.connects == 2
    finally:
        broker.close()
        gateway.stop()


def test_ibkr_adapter_when_mode_and_port_disagree_then_refused() -> None:
    with pytest.raises(ConfigurationError, match="live trading port"):
        IbkrBroker(port=4001, paper=True)
    with pytest.raises(ConfigurationError, match="paper trading port"):
        IbkrBroker(port=4002, paper=False)


def test_ibkr_adapter_when_thread_lost_its_event_loop_then_still_connects(
    gateway: FakeIBGateway,
) -> None:
    import asyncio

    asyncio.run(asyncio.sleep(0))  # leaves the main thread without a current event loop
    broker = IbkrBroker(port=gateway.port, client_id=32, timeout_s=5)
    try:
        assert broker.account().cash_usd == 100_000.0
    finally:
        broker.close()


def test_ibkr_adapter_when_called_inside_a_running_event_loop_then_works(
    gateway: FakeIBGateway,
) -> None:
    import asyncio

    broker = IbkrBroker(port=gateway.port, client_id=33, timeout_s=5)

    async def handler() -> float:  # like the sidecar's kill endpoint
        broker.submit(order("q-9"))
        return broker.cancel_all()

    try:
        assert asyncio.run(handler()) == 1
        wait_for(lambda: [o["order_ref"] for o in gateway.orders.values()] == ["q-9"])
    finally:
        broker.close()
