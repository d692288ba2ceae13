"""The Airflow UI in a real headless browser: Debian's chromium driven by playwright-core.

``airflow_stack`` (tests/support/airflow_stack.py) runs `quant up` for real, and
``failed_run`` is a daily_trading run that failed its data-quality gate under the
real scheduler. ``ui_browser.mjs`` logs in as admin, finds the ``daily_trading``
DAG and the quant_risk plugin's Risk page (no token field: the server holds the
sidecar's token), opens the failed run and its "Run report" and "Data quality"
tabs and its Data Docs, saves screenshots into ``test-artifacts/``, and records
every request that left 127.0.0.1. No browser is ever downloaded: the script
runs the system's ``chromium``. Missing pieces are installed when this machine
can (chromium with apt-get as root, playwright-core with ``npm ci``); the test
is skipped only when node or chromium is absent and cannot be installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
STEPS = ["logged_in", "dag_listed", "dag_opened", "risk_page", "run_opened", "run_report",
         "data_quality", "data_docs"]
SCREENSHOTS = ("ui-home.png", "ui-dag-daily_trading.png", "ui-risk.png", "ui-run.png",
               "ui-run-report.png", "ui-data-quality.png", "ui-data-docs.png")
FAILED_TASK = "data_quality"
"""The task a run that fails its data-quality gate fails at."""


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


def test_airflow_ui_when_opened_in_chromium_then_risk_page_and_failed_runs_tabs_work_offline(
    browser_tools: tuple[str, str], airflow_stack: Any, failed_run: Any, artifacts_dir: Path
) -> None:
    node, chromium = browser_tools
    proc = subprocess.run(
        [node, str(HERE / "ui_browser.mjs"), "--base", airflow_stack.base_url,
         "--password", airflow_stack.password, "--out", str(artifacts_dir),
         "--chromium", chromium, "--dag", failed_run.dag_id, "--run", failed_run.run_id,
         "--failed-task", FAILED_TASK],
        capture_output=True, text=True, timeout=600, check=False,
    )
    lines = proc.stdout.strip().splitlines()
    assert lines, f"no output from the browser script:\n{proc.stderr[-3000:]}"
    seen = json.loads(lines[-1])
    assert proc.returncode == 0, seen.get("error") or proc.stderr[-3000:]
    assert seen["steps"] == STEPS
    assert seen["riskUrl"].endswith("/plugin/risk")
    assert seen["riskState"] == "ACTIVE"
    assert seen["riskHasKill"] is True
    assert seen["riskHasTokenField"] is False  # the sidecar token never reaches the browser

    # the failed run's own report, in the run's "Run report" tab
    assert seen["runReportUrl"].endswith("/plugin/run-report")
    assert seen["reportRunId"] == failed_run.run_id
    assert seen["reportBadge"] == "failed"
    assert seen["reportSaysFailed"] is True
    assert seen["reportNamesTask"] is True
    assert str(failed_run.session) in seen["reportTitle"]  # a date, shown as YYYY-MM-DD

    # its checks in the "Data quality" tab, a failed one first, and its Data Docs offline
    assert seen["dataQualityUrl"].endswith("/plugin/data-quality")
    assert seen["dqFirstResult"] == "FAILED"
    assert seen["dqRows"] > 1
    assert seen["dataDocsFailedListed"] is True

    assert seen["externalRequests"] == []  # the UI and the plugin's pages need no network
    for name in SCREENSHOTS:
        shot = artifacts_dir / name
        assert shot.exists() and shot.stat().st_size > 10_000, name
