"""The simulator broker on the real (embedded) PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from quant.exceptions import BrokerError
from quant.execution import Broker, Order, OrderStatus, SimBroker, TimeInForce

AT = datetime(2027, 1, 15, 14, 30, tzinfo=UTC)


@pytest.fixture()
def broker(sim_broker: SimBroker) -> SimBroker:
    return sim_broker  # tests/conftest.py


def buy(coid: str, symbol: str = "AAPL", qty: float = 100, **kw: object) -> Order:
    return Order(client_order_id=coid, symbol=symbol, side="buy", qty_shares=qty, **kw)  # type: ignore[arg-type]


def test_sim_broker_implements_the_broker_protocol(broker: SimBroker) -> None:
    assert isinstance(broker, Broker)
    assert broker.account().cash_usd == 100_000.0


def test_submit_when_auction_then_fills_with_slippage_and_commission(broker: SimBroker) -> None:
    placed = broker.submit(buy("c-1"))
    assert placed.status is OrderStatus.OPEN and placed.remaining_qty_shares == 100
    fills = broker.fill_auction({"AAPL": 100.0}, at=AT)
    assert len(fills) == 1
    assert fills[0].price_usd == pytest.approx(100.10)
    assert fills[0].commission_usd == pytest.approx(1.0)
    assert broker.open_orders() == []
    [pos] = broker.positions()
    assert (pos.symbol, pos.qty_shares, pos.avg_price_usd) == ("AAPL", 100, pytest.approx(100.10))
    account = broker.account()
    assert account.cash_usd == pytest.approx(100_000 - 100 * 100.10 - 1.0)
    assert account.equity_usd == pytest.approx(account.cash_usd + 100 * 100.0)
    assert broker.fills_since(AT - timedelta(seconds=1)) == fills
    assert broker.fills_since(AT + timedelta(seconds=1)) == []


def test_fill_when_volume_small_then_partial_and_rest_stays_open(broker: SimBroker) -> None:
    broker.submit(buy("c-1", qty=100))
    fills = broker.fill_auction({"AAPL": 100.0}, at=AT, volumes={"AAPL": 300})
    assert [f.qty_shares for f in fills] == [30]
    [live] = broker.open_orders()
    assert live.status is OrderStatus.PARTIALLY_FILLED
    assert live.remaining_qty_shares == 70


def test_submit_when_client_order_id_reused_then_refused(broker: SimBroker) -> None:
    broker.submit(buy("same"))
    with pytest.raises(BrokerError, match="duplicate client_order_id"):
        broker.submit(buy("same"))
    assert broker.order_by_client_id("same") is not None
    assert broker.order_by_client_id("other") is None


def test_cancel_all_when_orders_open_then_none_left_and_repeat_is_harmless(broker: SimBroker) -> None:
    for i in range(5):
        broker.submit(buy(f"c-{i}"))
    assert broker.cancel_all() == 5
    assert broker.open_orders() == []
    assert broker.cancel_all() == 0
    order = broker.order_by_client_id("c-0")
    assert order is not None and order.status is OrderStatus.CANCELLED
    assert broker.cancel(order.order_id) is False
    with pytest.raises(BrokerError, match="unknown order"):
        broker.cancel("sim-nope")


def test_opg_order_when_close_auction_then_not_filled(broker: SimBroker) -> None:
    broker.submit(buy("c-1", time_in_force=TimeInForce.OPG))
    assert broker.fill_auction({"AAPL": 100.0}, at=AT, auction="close") == []
    assert len(broker.fill_auction({"AAPL": 100.0}, at=AT, auction="open")) == 1


def test_reduce_only_when_larger_than_position_then_fills_only_the_position(broker: SimBroker) -> None:
    broker.submit(buy("c-1", qty=50))
    broker.fill_auction({"AAPL": 100.0}, at=AT)
    broker.submit(
        Order(client_order_id="c-2", symbol="AAPL", side="sell", qty_shares=80, reduce_only=True)
    )
    fills = broker.fill_auction({"AAPL": 101.0}, at=AT + timedelta(days=1))
    assert [f.qty_shares for f in fills] == [50]
    assert broker.positions() == []
    order = broker.order_by_client_id("c-2")
    assert order is not None and order.status is OrderStatus.CANCELLED
    assert broker.open_orders() == []


def test_limit_order_when_price_above_limit_then_not_filled(broker: SimBroker) -> None:
    broker.submit(buy("c-1", order_type="limit", limit_price_usd=99.0))
    assert broker.fill_auction({"AAPL": 100.0}, at=AT) == []
    [fill] = broker.fill_auction({"AAPL": 98.0}, at=AT)
    assert fill.price_usd <= 99.0


def test_sim_account_when_reopened_then_state_persisted(broker: SimBroker, db_conn) -> None:  # noqa: ANN001
    broker.submit(buy("c-1"))
    again = SimBroker(db_conn, account=broker.account_name)
    assert [o.client_order_id for o in again.open_orders()] == ["c-1"]


def test_order_when_invalid_then_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="qty_shares"):
        buy("x", qty=1.5)
    with pytest.raises(ValueError, match="limit_price_usd"):
        buy("x", order_type="limit")
