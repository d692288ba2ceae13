"""The alpaca broker adapter through the real alpaca-py client against the local fake."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from quant.exceptions import BrokerError, BrokerUnavailableError, ConfigurationError
from quant.execution import AlpacaBroker, Broker, Order, OrderStatus, TimeInForce
from quant.testing import FakeAlpaca

KEY, SECRET = "exec-key", "exec-secret-value"


@pytest.fixture()
def fake() -> Iterator[FakeAlpaca]:
    with FakeAlpaca(api_key=KEY, secret_key=SECRET, cash=50_000.0) as server:
        yield server


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture()
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture()
def broker(fake: FakeAlpaca, sleeps: Sleeps) -> Iterator[AlpacaBroker]:
    b = AlpacaBroker(
        api_key=KEY,
        secret_key=SECRET,
        base_url=fake.url,
        max_attempts=4,
        backoff_s=0.01,
        max_backoff_s=0.05,
        timeout_s=0.5,
        sleep=sleeps,
    )
    yield b
    b.close()


def order(cid: str = "c-1", symbol: str = "AAA", side: str = "buy", qty: float = 10) -> Order:
    return Order(
        client_order_id=cid,
        symbol=symbol,
        side=side,  # type: ignore[arg-type]
        qty_shares=qty,
        time_in_force=TimeInForce.OPG,
    )


def posts(fake: FakeAlpaca) -> list:
    return [r for r in fake.requests_to("/v2/orders") if r.method == "POST"]


def test_adapter_implements_broker_and_round_trips_orders_positions_fills(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    assert isinstance(broker, Broker)
    start = datetime.now(UTC) - timedelta(seconds=5)
    placed = broker.submit(order("c-1", "AAA", "buy", 10))
    assert placed.client_order_id == "c-1" and placed.status is OrderStatus.OPEN
    assert posts(fake)[0].json["client_order_id"] == "c-1"
    assert posts(fake)[0].json["time_in_force"] == "opg"
    assert broker.order_by_client_id("c-1").order_id == placed.order_id
    assert broker.order_by_client_id("nope") is None
    assert [o.client_order_id for o in broker.open_orders()] == ["c-1"]
    fake.fill({"AAA": 20.0})
    [pos] = broker.positions()
    assert (pos.symbol, pos.qty_shares, pos.avg_price_usd) == ("AAA", 10.0, 20.0)
    account = broker.account()
    assert account.cash_usd == pytest.approx(50_000.0 - 200.0)
    assert account.equity_usd == pytest.approx(50_000.0)
    [fill] = broker.fills_since(start)
    assert (fill.client_order_id, fill.qty_shares, fill.price_usd) == ("c-1", 10.0, 20.0)
    assert broker.order_by_client_id("c-1").status is OrderStatus.FILLED
    assert broker.cancel(placed.order_id) is False  # filled: nothing to cancel
    broker.submit(order("c-2", "BBB"))
    broker.submit(order("c-3", "CCC"))
    assert broker.cancel_all() == 2
    assert broker.open_orders() == []


def test_submit_when_rate_limited_then_retries_with_backoff_and_places_one_order(
    fake: FakeAlpaca, broker: AlpacaBroker, sleeps: Sleeps
) -> None:
    fake.fail_next(429, 2, path_prefix="/v2/orders", method="POST", retry_after_s=0.02)
    broker.submit(order())
    assert len(posts(fake)) == 3
    assert sleeps == [0.02, 0.02]  # Retry-After over the first backoff steps (0.01, 0.02)
    assert len(fake.orders_by_client_id()["c-1"]) == 1


def test_request_when_5xx_persists_then_gives_up_after_the_bound_with_clear_error(
    fake: FakeAlpaca, broker: AlpacaBroker, sleeps: Sleeps
) -> None:
    fake.fail_next(503, 50, path_prefix="/v2/account")
    with pytest.raises(BrokerUnavailableError, match=r"GET /account failed 4 times.*HTTP 503"):
        broker.account()
    assert len(fake.requests_to("/v2/account")) == 4
    assert sleeps == [0.01, 0.02, 0.04]


def test_submit_when_5xx_persists_then_gives_up_after_checking_each_attempt(
    fake: FakeAlpaca, broker: AlpacaBroker, sleeps: Sleeps
) -> None:
    fake.fail_next(503, 50, path_prefix="/v2/orders", method="POST")
    with pytest.raises(BrokerUnavailableError, match=r"POST /orders for 'c-1' failed 4 times"):
        broker.submit(order())
    assert len(posts(fake)) == 4
    # before every resend the order was looked up by its client id (it was not there)
    assert len(fake.requests_to("/v2/orders:by_client_order_id")) == 4
    assert sleeps == [0.01, 0.02, 0.04]
    assert fake.orders_by_client_id() == {}


def test_submit_when_server_errors_after_creating_then_looks_up_instead_of_resending(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.fail_next(500, 1, path_prefix="/v2/orders", method="POST", after_handling=True)
    placed = broker.submit(order())
    assert len(posts(fake)) == 1
    assert placed.order_id == fake.orders_by_client_id()["c-1"][0]["id"]


def test_submit_when_answer_times_out_then_looks_up_instead_of_resending(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.delay_next(1.5, path_prefix="/v2/orders", method="POST")
    placed = broker.submit(order())
    assert len(posts(fake)) == 1
    assert [o["id"] for o in fake.orders_by_client_id()["c-1"]] == [placed.order_id]


def test_submit_when_client_id_already_used_then_refused_as_duplicate(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    broker.submit(order())
    with pytest.raises(BrokerError, match="duplicate client_order_id 'c-1'"):
        broker.submit(order())
    assert len(fake.orders_by_client_id()["c-1"]) == 1


def test_adapter_when_credentials_missing_then_configuration_error_without_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="APCA_API_KEY_ID"):
        AlpacaBroker()
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    monkeypatch.setenv("APCA_API_BASE_URL", "https://api.alpaca.markets")
    with pytest.raises(ConfigurationError, match="live server") as err:
        AlpacaBroker(paper=True)
    assert SECRET not in str(err.value)
    b = AlpacaBroker(paper=False)
    assert SECRET not in repr(b) and KEY not in repr(b)
