"""``quant kill`` / ``quant status`` when the sidecar is down: recorded and cancelled directly."""

from __future__ import annotations

import socket
import uuid

import pytest
from typer.testing import CliRunner

from quant.cli import app
from quant.config import Settings, load_settings
from quant.db import connect
from quant.execution import Order, SimBroker
from quant.sidecar import _cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def down_settings(clean_db: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    settings = load_settings(
        sidecar_url=f"http://127.0.0.1:{free_port()}",
        sidecar_token="cli-token",
        sidecar_timeout_s=0.5,
    )
    monkeypatch.setattr(_cli, "_settings", lambda: settings)
    return settings


def test_kill_when_sidecar_down_then_recorded_and_orders_cancelled_directly(
    down_settings: Settings,
) -> None:
    broker = SimBroker(connect(down_settings))  # the sidecar's default sim account
    broker.submit(
        Order(client_order_id=f"o-{uuid.uuid4().hex[:6]}", symbol="AAPL", side="buy", qty_shares=5)
    )
    runner = CliRunner()

    result = runner.invoke(app, ["kill", "--reason", "sidecar down drill"])

    assert result.exit_code == 0, result.output
    assert "HALTED" in result.output
    assert broker.open_orders() == []
    conn = connect(down_settings)
    with conn, conn.cursor() as cur:
        cur.execute("select kind, to_state, actor from ops.kill_switch_events where kind = 'kill'")
        assert cur.fetchall() == [("kill", "HALTED", "cli-direct")]
    conn.close()
    status = runner.invoke(app, ["status"])
    assert status.exit_code == 3
    assert "last recorded trading state: HALTED" in status.output
    broker.close()


def test_kill_when_mode_unknown_then_usage_error(down_settings: Settings) -> None:
    result = CliRunner().invoke(app, ["kill", "--reason", "x", "--mode", "panic"])
    assert result.exit_code == 2
