"""Submission through the alpaca adapter: crash and rerun, sidecar down, backfills, reconcile."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from execution_world import WEIGHTS, load_world

from quant.config import Settings
from quant.exceptions import (
    BrokerUnavailableError,
    ExecutionError,
    ReconciliationError,
    SidecarError,
)
from quant.execution import (
    AlpacaBroker,
    Order,
    generate_orders,
    pretrade_check,
    reconcile,
    submit_orders,
)
from quant.pipeline import run_context
from quant.sidecar import SidecarClient
from quant.testing import FakeAlpaca
from quant.testing.sidecar_process import SidecarProcess, replaying_sidecar

pytestmark = pytest.mark.integration

KEY, SECRET = "paper-key", "paper-secret"


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAlpaca]:
    with FakeAlpaca(api_key=KEY, secret_key=SECRET, cash=1_000_000.0) as server:
        monkeypatch.setenv("APCA_API_KEY_ID", KEY)
        monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
        monkeypatch.setenv("APCA_API_BASE_URL", server.url)
        yield server


@pytest.fixture()
def settings(replay_settings: Settings, fake: FakeAlpaca) -> Settings:
    execution = replay_settings.execution.model_copy(
        update={"broker_backoff_s": 0.01, "broker_max_backoff_s": 0.02, "broker_timeout_s": 1.0}
    )
    return replay_settings.model_copy(update={"broker": "alpaca", "execution": execution})


class Crash(BaseException):
    """The worker dies (not an Exception: nothing may catch it)."""


class CrashingBroker:
    """Passes calls to the real adapter; dies right after the broker accepted the n-th order."""

    def __init__(self, inner: AlpacaBroker, crash_after: int) -> None:
        self.inner, self.crash_after, self.sent = inner, crash_after, 0
        self.name = inner.name

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)

    def submit(self, order: Order) -> Any:
        placed = self.inner.submit(order)
        self.sent += 1
        if self.sent == self.crash_after:
            raise Crash(f"worker killed after {order.client_order_id}")
        return placed


def _orders(conn, dag_id: str) -> dict[str, dict]:  # noqa: ANN001
    with conn.cursor() as cur:
        cur.execute(
            "select client_order_id, symbol, status, broker_order_id, reject_reasons "
            "from ops.orders where dag_id = %s",
            (dag_id,),
        )
        names = [d[0] for d in cur.description]
        return {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}


def _prepare(settings: Settings, conn, dag_id: str, weights=WEIGHTS):  # noqa: ANN001
    world = load_world(conn)
    day = world.sessions[-3]
    gen = generate_orders(run_context(day, run_id="r", settings=settings, dag_id=dag_id,
                                      latest_session=day, targets=weights))
    assert (gen["broker"], gen["risk_check"]) == ("alpaca", "sidecar")
    pretrade_check(run_context(day, run_id="r", settings=settings, dag_id=dag_id))
    return world, day


def _writes(fake: FakeAlpaca) -> list:
    return [r for r in fake.requests if r.method in ("POST", "DELETE", "PATCH")]


def test_submit_when_crash_after_half_then_rerun_leaves_one_order_per_client_id(
    settings: Settings, fake: FakeAlpaca, db_conn, dag_id: str
) -> None:
    _, day = _prepare(settings, db_conn, dag_id)
    approved = _orders(db_conn, dag_id)
    assert len(approved) == len(WEIGHTS)
    half = len(approved) // 2
    inner = AlpacaBroker(api_key=KEY, secret_key=SECRET, base_url=fake.url)
    with pytest.raises(Crash):
        submit_orders(run_context(day, run_id="r", settings=settings, dag_id=dag_id,
                                  broker=CrashingBroker(inner, half)))
    statuses = sorted(o["status"] for o in _orders(db_conn, dag_id).values())
    assert statuses.count("submitted") == half - 1 and statuses.count("submitting") == 1
    out = submit_orders(run_context(day, run_id="r", settings=settings, dag_id=dag_id))
    assert out["already_at_broker"] == 1
    assert out["submitted"] == len(approved) - half
    at_broker = fake.orders_by_client_id()
    assert sorted(at_broker) == sorted(approved)
    assert all(len(orders) == 1 for orders in at_broker.values())
    assert len([r for r in _writes(fake) if r.path == "/v2/orders"]) == len(approved)
    rows = _orders(db_conn, dag_id)
    assert len(rows) == len(approved)
    for cid, row in rows.items():
        assert row["status"] == "submitted"
        assert row["broker_order_id"] == at_broker[cid][0]["id"]
    # and a third run sends nothing
    assert submit_orders(run_context(day, run_id="r", settings=settings, dag_id=dag_id))["submitted"] == 0
    assert len(_writes(fake)) == len(approved)


def test_submit_when_sidecar_halted_or_stopped_then_fails_and_fake_server_receives_nothing(
    settings: Settings, fake: FakeAlpaca, db_conn, dag_id: str
) -> None:
    own = replaying_sidecar(settings, settings.sidecar_token.get_secret_value())
    own.start()
    try:
        on_own = settings.model_copy(update={"sidecar_url": own.url})
        _, day = _prepare(on_own, db_conn, dag_id)
        assert {o["status"] for o in _orders(db_conn, dag_id).values()} == {"approved"}
        seen = len(fake.requests)
        client = SidecarClient(own.url, token=own.token)
        client.kill("test: trading stopped", "halt")
        with pytest.raises(ExecutionError, match="HALTED"):
            submit_orders(run_context(day, run_id="r", settings=on_own, dag_id=dag_id))
        client.resume("test: back to normal")
    finally:
        own.stop()
    with pytest.raises(SidecarError, match="unreachable"):
        submit_orders(run_context(day, run_id="r", settings=on_own, dag_id=dag_id))
    assert len(fake.requests) == seen
    assert _writes(fake) == []
    assert {o["status"] for o in _orders(db_conn, dag_id).values()} == {"approved"}


def test_submit_when_broker_keeps_failing_then_bounded_error_and_rerun_sends_once(
    settings: Settings, fake: FakeAlpaca, db_conn, dag_id: str
) -> None:
    _, day = _prepare(settings, db_conn, dag_id)
    fake.fail_next(503, 100, path_prefix="/v2/orders", method="POST")
    with pytest.raises(BrokerUnavailableError, match="failed 5 times"):
        submit_orders(run_context(day, run_id="r", settings=settings, dag_id=dag_id))
    assert fake.orders_by_client_id() == {}
    fake._failures.clear()
    out = submit_orders(run_context(day, run_id="r", settings=settings, dag_id=dag_id))
    assert out["submitted"] == len(WEIGHTS)
    assert all(len(v) == 1 for v in fake.orders_by_client_id().values())


def test_pretrade_when_rejected_then_reason_stored_and_order_never_reaches_alpaca(
    settings: Settings, fake: FakeAlpaca, db_conn, dag_id: str
) -> None:
    _, day = _prepare(settings, db_conn, dag_id, dict(WEIGHTS) | {"DDD": 0.25})
    submit_orders(run_context(day, run_id="r", settings=settings, dag_id=dag_id))
    rows = {o["symbol"]: o for o in _orders(db_conn, dag_id).values()}
    assert rows["DDD"]["status"] == "rejected"
    assert "POSITION_EXCEEDS_MAX_WEIGHT" in rows["DDD"]["reject_reasons"]
    sent = {o[0]["symbol"] for o in fake.orders_by_client_id().values()}
    assert "DDD" not in sent and sent == set(WEIGHTS) - {"DDD"}


def test_backfill_when_configured_for_alpaca_then_uses_sim_and_fake_sees_nothing(
    settings: Settings, fake: FakeAlpaca, db_conn, dag_id: str
) -> None:
    world = load_world(db_conn)
    for day in world.sessions[-6:-3]:
        gen = generate_orders(run_context(day, run_id=f"backfill__{day}", settings=settings,
                                          dag_id=dag_id, run_type="backfill", backfill_id=3,
                                          latest_session=world.sessions[-3], targets=WEIGHTS))
        assert (gen["broker"], gen["account"]) == ("sim", "backfill-3")
        pretrade_check(
            run_context(day, run_id=f"backfill__{day}", settings=settings, dag_id=dag_id),
        )
        submit_orders(run_context(day, run_id=f"backfill__{day}", settings=settings, dag_id=dag_id))
        reconcile(run_context(day, run_id=f"backfill__{day}", settings=settings, dag_id=dag_id))
    assert fake.requests == []
    with db_conn.cursor() as cur:
        cur.execute("select distinct broker, account from ops.orders where dag_id = %s", (dag_id,))
        assert cur.fetchall() == [("sim", "backfill-3")]


def test_reconcile_when_alpaca_position_differs_then_locks_symbol_and_raises(
    settings: Settings, fake: FakeAlpaca, replay_sidecar: SidecarProcess, db_conn, dag_id: str
) -> None:
    world, day = _prepare(settings, db_conn, dag_id)
    submit_orders(run_context(day, run_id="r", settings=settings, dag_id=dag_id))
    nxt = world.sessions[-2]
    fake.fill(world.opens(nxt))
    out = reconcile(run_context(day, run_id="r", settings=settings, dag_id=dag_id))
    assert out["new_fills"] == len(WEIGHTS) and out["differences"] == []
    assert {o["status"] for o in _orders(db_conn, dag_id).values()} == {"filled"}
    held = fake.positions["BBB"]
    fake.set_position("BBB", held["qty"] - 3, held["avg_entry_price"], held["current_price"])
    with pytest.raises(ReconciliationError, match="BBB"):
        reconcile(run_context(day, run_id="r", settings=settings, dag_id=dag_id))
    overrides = SidecarClient(replay_sidecar.url).state()["book"]["symbol_overrides"]
    assert overrides["BBB"]["reduce_only"] is True
    fake.set_position("BBB", held["qty"], held["avg_entry_price"], held["current_price"])
    assert reconcile(run_context(day, run_id="r", settings=settings, dag_id=dag_id))["cleared_locks"] == ["BBB"]


def test_stages_when_credentials_passed_in_then_used_without_environment(
    settings: Settings, fake: FakeAlpaca, db_conn, dag_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "APCA_API_BASE_URL"):
        monkeypatch.delenv(name)
    creds = {"api_key": KEY, "secret_key": SECRET, "base_url": fake.url}  # e.g. from a connection
    world = load_world(db_conn)
    day = world.sessions[-3]
    common = {"run_id": "r", "settings": settings, "dag_id": dag_id, "credentials": creds}
    generate_orders(run_context(day, latest_session=day, targets=WEIGHTS, **common))
    pretrade_check(run_context(day, **common))
    assert submit_orders(run_context(day, **common))["submitted"] == len(WEIGHTS)
    assert len(fake.orders_by_client_id()) == len(WEIGHTS)
