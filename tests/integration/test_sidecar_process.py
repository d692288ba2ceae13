"""The sidecar as a real uvicorn process on loopback, restarted between requests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from quant.config import Settings
from quant.db import connect
from quant.exceptions import SidecarAuthError
from quant.sidecar import SidecarClient
from quant.testing.db import query
from quant.testing.sidecar_process import SidecarProcess, free_port

pytestmark = pytest.mark.integration

TOKEN = "process-test-token"


@pytest.fixture()
def sidecar(clean_db: Settings) -> Iterator[SidecarProcess]:
    proc = SidecarProcess(clean_db, free_port(), TOKEN)
    try:
        yield proc
    finally:
        proc.stop()


def test_kill_then_process_restarted_is_still_halted_with_event_in_database(
    sidecar: SidecarProcess, clean_db: Settings
) -> None:
    sidecar.start()
    client = SidecarClient(sidecar.url, token=TOKEN)
    assert client.health()["trading_state"] == "ACTIVE"

    with pytest.raises(SidecarAuthError):
        SidecarClient(sidecar.url).kill("no token")
    with pytest.raises(SidecarAuthError):
        SidecarClient(sidecar.url, token="wrong").kill("wrong token")
    assert client.health()["trading_state"] == "ACTIVE"

    out = client.kill("restart drill", "halt", actor="test")
    assert out["trading_state"] == "HALTED" and out["persisted"]

    sidecar.stop()
    sidecar.start()

    assert client.health()["trading_state"] == "HALTED"
    state = client.state()
    assert state["trading_state"] == "HALTED"
    assert any(
        e["kind"] == "kill" and e["reason"] == "restart drill" for e in state["recent_events"]
    )
    assert query(
        clean_db, "select to_state, reason, actor from ops.kill_switch_events where kind = 'kill'"
    ) == [("HALTED", "restart drill", "test")]
    client.resume("drill over", actor="test")
    assert client.health()["trading_state"] == "ACTIVE"


def test_start_when_database_unreachable_then_process_serves_halted(
    clean_db: Settings,
) -> None:
    proc = SidecarProcess(
        clean_db, free_port(), TOKEN, {"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/quant"}
    )
    try:
        proc.start()
        health = SidecarClient(proc.url).health()
        assert health["trading_state"] == "HALTED"
        assert "cannot read the kill-switch state" in health["fail_closed_reason"]
    finally:
        proc.stop()


def test_marks_over_http_when_day_loss_past_limit_then_halted_and_sim_orders_cancelled(
    clean_db: Settings,
) -> None:
    from datetime import UTC, datetime

    from quant.execution import Order, SimBroker

    broker = SimBroker(connect(clean_db))  # the sidecar's default sim account
    broker.submit(Order(client_order_id="seed", symbol="AAPL", side="buy", qty_shares=1000))
    broker.fill_auction({"AAPL": 100.0}, at=datetime.now(UTC))
    for i in range(3):
        broker.submit(Order(client_order_id=f"open-{i}", symbol="MSFT", side="buy", qty_shares=5))
    proc = SidecarProcess(
        clean_db, free_port(), TOKEN, {"QUANT_RISK__DAILY_LOSS_LIMIT_USD": "5000"}
    )
    try:
        proc.start()
        client = SidecarClient(proc.url, token=TOKEN)
        assert client.marks({"AAPL": 100.0})["trading_state"] == "ACTIVE"
        out = client.marks({"AAPL": 94.0})
        assert out["breaches"][0]["code"] == "DAILY_LOSS_LIMIT"
        assert out["kill"]["trading_state"] == "HALTED"
        assert broker.open_orders() == []
        assert client.health()["trading_state"] == "HALTED"
    finally:
        proc.stop()
        broker.close()
