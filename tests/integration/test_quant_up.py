"""`quant up` serves the Airflow UI and API, and Ctrl-C stops every component."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from quant.config import Settings

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _post(url: str, token: str, body: dict) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _command_lines(processes: list[psutil.Process]) -> list[str]:
    """The command lines of those still running (a child may exit while it is listed)."""
    lines = []
    for process in processes:
        try:
            lines.append(" ".join(process.cmdline()))
        except (psutil.NoSuchProcess, psutil.AccessDenied):  # ZombieProcess included
            continue
    return lines


def _running(process: psutil.Process) -> bool:
    """Still running and not a zombie (one that ends while it is asked counts as ended)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_quant_up_when_started_then_api_answers_and_sigint_stops_everything(
    airflow_db: Settings, quant_home: Path
) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "quant.cli", "up", "--port", str(port)],
        env=dict(os.environ) | {"QUANT_SIDECAR_URL": f"http://127.0.0.1:{_free_port()}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        status = 0
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, _ = _get(base + "/api/v2/monitor/health")
            except OSError:
                status = 0
            if status == 200:
                break
            time.sleep(1)
        assert status == 200, "API server did not come up"
        children = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(_command_lines(children))
        for component in ("scheduler", "dag-processor", "triggerer", "sidecar"):
            assert component in names

        password = json.loads(
            (quant_home / "airflow" / "simple_auth_passwords.json").read_text()
        )["admin"]
        body = json.dumps({"username": "admin", "password": password}).encode()
        request = urllib.request.Request(
            base + "/auth/token", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            token = json.loads(response.read())["access_token"]

        # the quant_risk plugin's pages, served by the API server to logged-in users only
        status, page = _get(base + "/quant/risk")
        assert status == 401, page[:500]
        deadline = time.monotonic() + 60
        while True:
            status, page = _get(base + "/quant/risk", token)
            if b'class="state ACTIVE"' in page or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert status == 200
        assert b"<h1>Risk</h1>" in page
        assert b'class="state ACTIVE"' in page, page[:2000]

        status, payload = _get(base + "/api/v2/dags", token)
        assert status == 200
        assert "daily_trading" in {d["dag_id"] for d in json.loads(payload)["dags"]}

        # a trigger with a param outside its schema is refused, with the reason
        status, payload = _post(
            base + "/api/v2/dags/daily_trading/dagRuns", token,
            {"logical_date": None, "conf": {"optimizer": "magic"}},
        )
        assert status == 400, payload
        assert b"optimizer" in payload or b"magic" in payload, payload
        status, payload = _post(
            base + "/api/v2/dags/daily_trading/dagRuns", token,
            {"logical_date": None, "conf": {"symbols": "SYN001"}},
        )
        assert status == 400, payload
        status, payload = _post(
            base + "/api/v2/dags/daily_trading/dagRuns", token,
            {"logical_date": None, "conf": {"dry_run": True, "optimizer": "hrp"}},
        )
        assert status == 200, payload
        assert json.loads(payload)["conf"]["optimizer"] == "hrp"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert f"http://127.0.0.1:{port}" in out
    assert "login admin /" in out
    assert proc.returncode == 0, out
    time.sleep(1)
    alive = [c for c in children if _running(c)]
    assert alive == [], f"left running: {_command_lines(alive)}"
