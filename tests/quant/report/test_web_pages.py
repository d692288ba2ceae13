"""The UI pages of the quant_risk plugin: Risk page with kill/resume, run-report links."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from quant.calendar import get_calendar
from quant.config import Settings, load_settings
from quant.report import create_app, write_run_report
from quant.testing.sidecar_process import SidecarProcess, free_port

pytestmark = pytest.mark.integration

TOKEN = "ui-test-token"


@pytest.fixture()
def sidecar(clean_db: Settings) -> Iterator[SidecarProcess]:
    proc = SidecarProcess(clean_db, free_port(), TOKEN)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def test_risk_page_when_sidecar_unreachable_then_says_so(clean_db: Settings) -> None:
    settings = load_settings(sidecar_url=f"http://127.0.0.1:{free_port()}")
    client = TestClient(create_app(settings))
    page = client.get("/risk")
    assert page.status_code == 200
    assert "SIDECAR UNREACHABLE" in page.text


def test_risk_page_when_kill_and_resume_then_state_follows_and_token_required(
    sidecar: SidecarProcess,
) -> None:
    settings = load_settings(sidecar_url=sidecar.url)
    client = TestClient(create_app(settings))
    page = client.get("/risk")
    assert page.status_code == 200
    assert 'class="state ACTIVE"' in page.text
    assert "Limits" in page.text

    refused = client.post("/risk/kill", data={"reason": "ui drill", "mode": "halt", "token": "wrong"})
    assert refused.status_code == 400
    assert "kill refused" in refused.text
    assert 'class="state ACTIVE"' in refused.text

    killed = client.post("/risk/kill", data={"reason": "ui drill", "mode": "halt", "token": TOKEN})
    assert killed.status_code == 200
    assert 'class="state HALTED"' in killed.text
    assert "ui drill" in killed.text  # the event is listed

    resumed = client.post("/risk/resume", data={"reason": "drill over", "token": TOKEN})
    assert resumed.status_code == 200
    assert 'class="state ACTIVE"' in resumed.text


def test_run_report_link_when_run_recorded_then_redirects_to_report(clean_db: Settings) -> None:
    session = get_calendar(clean_db.exchange).latest_closed_session()
    write_run_report(
        dag_id="daily_trading", run_id="manual__ui-test", session=session,
        stages={"stage": {"figure": 1}}, settings=clean_db,
    )
    client = TestClient(create_app(clean_db))
    page = client.get("/runs/daily_trading/manual__ui-test/report")
    assert page.status_code == 200
    assert session.isoformat() in page.text
    assert client.get("/runs/daily_trading/no-such-run/report").status_code == 404
