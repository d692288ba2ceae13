"""The ibkr broker adapter through the real ib_insync/ib_async client against the fake gateway."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from quant.exceptions import BrokerError, BrokerUnavailableError, ConfigurationError
from quant.execution import Broker, Fill, IbkrBroker, Order, OrderStatus, TimeInForce
from quant.testing import FakeIBGateway
from quant.testing.sidecar_process import free_port
from quant.venues.ibkr import IN, ib_module


@pytest.fixture()
def gateway() -> Iterator[FakeIBGateway]:
    fake = FakeIBGateway()
    fake.positions = {"AAA": (100.0, 50.5), "BBB": (-20.0, 120.0)}
    fake.account_values = {"NetLiquidation": 123_456.0, "TotalCashValue": 100_000.0}
    with fake:
        yield fake


@pytest.fixture()
def broker(gateway: FakeIBGateway) -> Iterator[IbkrBroker]:
    """An adapter on the fake gateway (it connects on first use), closed after the test."""
    adapter = IbkrBroker(port=gateway.port, client_id=31, timeout_s=5)
    try:
        yield adapter
    finally:
        adapter.close()


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
    broker: IbkrBroker,
    gateway: FakeIBGateway,
) -> None:
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
    broker: IbkrBroker,
) -> None:
    import asyncio

    asyncio.run(asyncio.sleep(0))  # leaves the main thread without a current event loop
    assert broker.account().cash_usd == 100_000.0


def test_ibkr_adapter_when_called_inside_a_running_event_loop_then_works(
    broker: IbkrBroker,
    gateway: FakeIBGateway,
) -> None:
    import asyncio

    async def handler() -> float:  # like the sidecar's kill endpoint
        broker.submit(order("q-9"))
        return broker.cancel_all()

    assert asyncio.run(handler()) == 1
    wait_for(lambda: [o["order_ref"] for o in gateway.orders.values()] == ["q-9"])


# ---------------------------------------------------------------------- fills


T0 = datetime(2026, 11, 20, 14, 30, 5, tzinfo=UTC)
"""Executions carry whole seconds on the wire (TWS's clock)."""


def order_id_of(gateway: FakeIBGateway, cid: str) -> int:
    """The id under which the gateway received the order with orderRef ``cid``."""
    wait_for(lambda: any(o["order_ref"] == cid for o in gateway.orders.values()))
    return next(i for i, o in gateway.orders.items() if o["order_ref"] == cid)


def test_fills_since_when_buy_and_sell_filled_then_both_fills_with_commissions_in_time_order(
    broker: IbkrBroker,
    gateway: FakeIBGateway,
) -> None:
    other = IbkrBroker(port=gateway.port, client_id=35, timeout_s=5)
    try:
        broker.submit(order("q-buy", "AAA", "buy"))
        broker.submit(order("q-sell", "CCC", "sell"))
        buy_id, sell_id = order_id_of(gateway, "q-buy"), order_id_of(gateway, "q-sell")
        buy_at = T0 + timedelta(minutes=3)
        sell_at = (T0 + timedelta(seconds=40)).astimezone(ZoneInfo("America/New_York"))
        buy_exec = gateway.fill(buy_id, 25, 50.25, commission=1.05, at=buy_at)
        sell_exec = gateway.fill(sell_id, 25, 30.5, commission=0.95, at=sell_at)
        expected = [
            Fill(
                fill_id=sell_exec,
                order_id=str(sell_id),
                client_order_id="q-sell",
                symbol="CCC",
                side="sell",
                qty_shares=25.0,
                price_usd=30.5,
                commission_usd=0.95,
                filled_at=T0 + timedelta(seconds=40),
            ),
            Fill(
                fill_id=buy_exec,
                order_id=str(buy_id),
                client_order_id="q-buy",
                symbol="AAA",
                side="buy",
                qty_shares=25.0,
                price_usd=50.25,
                commission_usd=1.05,
                filled_at=buy_at,
            ),
        ]
        since = T0 - timedelta(hours=1)
        # the placing connection (told of the fills live) and a fresh one (which
        # already receives them while connecting) report the same fills
        for adapter in (broker, broker, other):
            fills = adapter.fills_since(since)
            assert fills == expected
            assert all(f.filled_at.utcoffset() == timedelta(0) for f in fills)
            assert all(f.filled_at.tzinfo is not None for f in fills)
        assert {e["exec_id"] for e in gateway.executions} == {buy_exec, sell_exec}
    finally:
        other.close()


def test_fills_since_when_partial_fill_then_rest_then_two_fills_summing_to_the_order(
    broker: IbkrBroker,
    gateway: FakeIBGateway,
) -> None:
    broker.submit(order("q-part", "BBB", "buy"))
    oid = order_id_of(gateway, "q-part")
    first = gateway.fill(oid, 10, 120.0, commission=1.0, at=T0)
    assert gateway.orders[oid]["status"] == "Submitted"
    assert gateway.orders[oid]["filled"] == 10
    second = gateway.fill(oid, 15, 121.0, commission=1.0, at=T0 + timedelta(seconds=1))
    assert gateway.orders[oid]["status"] == "Filled"
    with pytest.raises(ValueError, match="not live"):
        gateway.fill(oid, 1, 121.0)
    fills = broker.fills_since(T0)
    assert [(f.fill_id, f.qty_shares, f.price_usd) for f in fills] == [
        (first, 10.0, 120.0),
        (second, 15.0, 121.0),
    ]
    assert sum(f.qty_shares for f in fills) == 25  # the order's quantity
    # the gateway's book: short 20 BBB, bought 10 (still short, same cost), then 15
    # (long 5, opened at the second price)
    assert gateway.positions["BBB"] == (5.0, 121.0)
    assert {(f.order_id, f.client_order_id) for f in fills} == {(str(oid), "q-part")}
    # the status updates the gateway pushed have been read along with the fills
    placed = broker.order_by_client_id("q-part")
    assert placed is not None
    assert (placed.status, placed.filled_qty_shares) == (OrderStatus.FILLED, 25.0)


def test_fills_since_when_since_after_first_fill_then_only_the_later_one(
    broker: IbkrBroker,
    gateway: FakeIBGateway,
) -> None:
    broker.submit(order("q-early", "AAA", "buy"))
    broker.submit(order("q-late", "DDD", "sell"))
    gateway.fill(order_id_of(gateway, "q-early"), 25, 50.0, commission=1.0, at=T0)
    late_at = T0 + timedelta(hours=2)
    late = gateway.fill(order_id_of(gateway, "q-late"), 25, 80.0, commission=1.0, at=late_at)
    assert [f.fill_id for f in broker.fills_since(T0 + timedelta(seconds=1))] == [late]
    # within the first fill's second: the gateway (whole seconds) still sends it,
    # the adapter drops it
    assert [f.fill_id for f in broker.fills_since(T0 + timedelta(milliseconds=500))] == [late]
    assert [f.fill_id for f in broker.fills_since(late_at + timedelta(seconds=1))] == []
    sent = [f[5] for f in gateway.received_of(IN.REQ_EXECUTIONS)][-3:]
    assert sent == [
        (T0 + timedelta(seconds=1)).strftime("%Y%m%d-%H:%M:%S"),
        T0.strftime("%Y%m%d-%H:%M:%S"),
        (late_at + timedelta(seconds=1)).strftime("%Y%m%d-%H:%M:%S"),
    ]
    with pytest.raises(ValueError, match="timezone-aware"):
        broker.fills_since(T0.replace(tzinfo=None))


def test_fake_gateway_when_executions_requested_with_filter_then_only_matching_ones(
    broker: IbkrBroker,
    gateway: FakeIBGateway,
) -> None:
    broker.submit(order("q-f1", "AAA", "buy"))
    broker.submit(order("q-f2", "CCC", "sell"))
    one = gateway.fill(order_id_of(gateway, "q-f1"), 25, 50.0, at=T0)
    two = gateway.fill(order_id_of(gateway, "q-f2"), 25, 30.0, at=T0 + timedelta(minutes=1))
    broker.close()
    later = T0 + timedelta(seconds=30)
    eastern = later.astimezone(ZoneInfo(gateway.time_zone))
    criteria = {
        "all": {},
        "utc": {"time": later.strftime("%Y%m%d-%H:%M:%S")},
        "login zone": {"time": eastern.strftime("%Y%m%d %H:%M:%S")},
        "symbol": {"symbol": "AAA"},
        "side": {"side": "SELL"},
        "account": {"acctCode": "DU0000000"},
    }

    def request_all() -> dict[str, list[str]]:  # a client of its own, on its own event loop
        asyncio.set_event_loop(asyncio.new_event_loop())
        mod = ib_module()  # ib_async, else ib_insync
        ib = mod.IB()
        ib.connect(gateway.host, gateway.port, clientId=39, timeout=5)
        try:
            return {
                name: [f.execution.execId for f in ib.reqExecutions(mod.ExecutionFilter(**c))]
                for name, c in criteria.items()
            }
        finally:
            ib.disconnect()

    with ThreadPoolExecutor(max_workers=1) as pool:
        answered = pool.submit(request_all).result()
    assert answered == {
        "all": [one, two],
        "utc": [two],
        "login zone": [two],
        "symbol": [one],
        "side": [two],
        "account": [],
    }


def test_fills_since_when_commission_not_reported_yet_then_zero_until_reported(
    broker: IbkrBroker,
    gateway: FakeIBGateway,
) -> None:
    broker.submit(order("q-nocomm", "EEE", "buy"))
    exec_id = gateway.fill(order_id_of(gateway, "q-nocomm"), 25, 200.0, at=T0)
    [fill] = broker.fills_since(T0)
    assert (fill.fill_id, fill.commission_usd, fill.price_usd) == (exec_id, 0.0, 200.0)
    gateway.report_commission(exec_id, 1.75)
    [fill] = broker.fills_since(T0)
    assert (fill.fill_id, fill.commission_usd) == (exec_id, 1.75)


# ---------------------------------------------------------------------- order status


def _call_from_thread_without_event_loop(fn):  # noqa: ANN001, ANN202
    asyncio.run(asyncio.sleep(0))  # leaves this thread without a current event loop
    return fn()


def _call_inside_running_event_loop(fn):  # noqa: ANN001, ANN202
    async def handler():  # noqa: ANN202 - like the sidecar's handlers
        return fn()

    return asyncio.run(handler())


def _call_from_a_worker_thread(fn):  # noqa: ANN001, ANN202
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


@pytest.mark.parametrize(
    "call",
    [
        _call_from_a_worker_thread,
        _call_from_thread_without_event_loop,
        _call_inside_running_event_loop,
    ],
    ids=["plain-thread", "thread-without-loop", "inside-running-loop"],
)
def test_order_by_client_id_when_filled_in_two_parts_on_the_placing_connection_then_current_status(
    broker: IbkrBroker,
    gateway: FakeIBGateway,
    call,  # noqa: ANN001
) -> None:
    call(lambda: broker.submit(order("q-status", "AAA", "buy")))
    oid = order_id_of(gateway, "q-status")
    assert call(lambda: broker.order_by_client_id("q-status")).status is OrderStatus.OPEN
    part, total = 10.0, float(order("q-status").qty_shares)
    gateway.fill(oid, part, 50.0, commission=1.0, at=T0)  # pushed to this connection at once
    placed = call(lambda: broker.order_by_client_id("q-status"))
    assert placed is not None
    assert (placed.status, placed.filled_qty_shares) == (OrderStatus.PARTIALLY_FILLED, part)
    assert [o.client_order_id for o in call(broker.open_orders)] == ["q-status"]
    gateway.fill(oid, total - part, 50.5, commission=1.0, at=T0 + timedelta(seconds=1))
    done = call(lambda: broker.order_by_client_id("q-status"))
    assert done is not None
    assert (done.status, done.filled_qty_shares) == (OrderStatus.FILLED, total)
    assert call(broker.open_orders) == []
