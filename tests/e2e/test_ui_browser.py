"""The Airflow UI in a real headless browser: Debian's chromium driven by playwright-core.

`quant up` serves the UI; ``ui_browser.mjs`` logs in as admin, finds the
``daily_trading`` DAG and the quant_risk plugin's Risk page, and saves
screenshots into ``test-artifacts/``. No browser is ever downloaded: the script
runs the system's ``chromium``. Missing pieces are installed when this machine
can (chromium with apt-get as root, playwright-core with ``npm ci``); the test
is skipped only when node or chromium is absent and cannot be installed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from quant.config import Settings

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _chromium() -> str | None:
    found = shutil.which("chromium")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], capture_output=True,
                       check=False, env=os.environ | {"DEBIAN_FRONTEND": "noninteractive"})
        found = shutil.which("chromium")
    return found


@pytest.fixture(scope="module")
def browser_tools() -> tuple[str, str]:
    """``node`` and ``chromium`` paths, with playwright-core installed under tests/e2e."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node/npm not installed: the browser test needs Node.js (apt-get install nodejs npm)")
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium not installed and not installable here (apt-get install chromium)")
    if not (HERE / "node_modules" / "playwright-core").exists():
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE,
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"npm ci failed:\n{proc.stdout}\n{proc.stderr}"
    return node, chromium


@pytest.fixture()
def quant_up(airflow_db: Settings) -> Iterator[str]:
    """`quant up` on a free port (with its own sidecar); its base URL. Stopped with SIGINT."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "quant.cli", "up", "--port", str(port)],
        env=dict(os.environ) | {"QUANT_SIDECAR_URL": f"http://127.0.0.1:{_free_port()}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, "quant up exited"
            try:
                with urllib.request.urlopen(base + "/quant/risk", timeout=5) as response:
                    if b'class="state ACTIVE"' in response.read():
                        break  # API server up, plugin mounted, sidecar answering
            except OSError:
                pass
            assert time.monotonic() < deadline, "quant up did not serve the UI in 180 s"
            time.sleep(1)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_airflow_ui_when_opened_in_chromium_then_login_dag_and_risk_page_found(
    browser_tools: tuple[str, str], quant_up: str, quant_home: Path, artifacts_dir: Path
) -> None:
    node, chromium = browser_tools
    password = json.loads((quant_home / "airflow" / "simple_auth_passwords.json").read_text())["admin"]
    proc = subprocess.run(
        [node, str(HERE / "ui_browser.mjs"), "--base", quant_up, "--password", password,
         "--out", str(artifacts_dir), "--chromium", chromium],
        capture_output=True, text=True, timeout=300, check=False,
    )
    lines = proc.stdout.strip().splitlines()
    assert lines, f"no output from the browser script:\n{proc.stderr[-3000:]}"
    seen = json.loads(lines[-1])
    assert proc.returncode == 0, seen.get("error") or proc.stderr[-3000:]
    assert seen["steps"] == ["logged_in", "dag_listed", "dag_opened", "risk_page"]
    assert seen["riskUrl"].endswith("/plugin/risk")
    assert seen["riskState"] == "ACTIVE"
    assert seen["riskHasKill"] is True
    assert seen["externalRequests"] == []  # the UI and the plugin page need no network
    for name in ("ui-home.png", "ui-dag-daily_trading.png", "ui-risk.png"):
        shot = artifacts_dir / name
        assert shot.exists() and shot.stat().st_size > 10_000, name
