"""`quant demo`, the first command of the README, on a fresh QUANT_HOME."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from quant.testing.sidecar_process import free_port

pytestmark = pytest.mark.integration


def test_quant_demo_when_fresh_home_then_runs_sessions_and_prints_report_path() -> None:
    from quant.db import stop_embedded

    home = Path(tempfile.mkdtemp(prefix="qt-demo-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QUANT_", "AIRFLOW"))}
    env |= {"QUANT_HOME": str(home), "QUANT_SIDECAR_URL": f"http://127.0.0.1:{free_port()}"}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "quant.cli", "demo", "--sessions", "3"],
            env=env, capture_output=True, text=True, timeout=900,
        )
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-4000:]
        assert out.count("success") >= 3, out[-4000:]
        match = re.search(r"report: (\S+index\.html)", out)
        assert match, out[-2000:]
        report = Path(match.group(1))
        assert report.is_file() and report.is_relative_to(home)
        assert "replay" in out and "paper" in out  # past sessions simulated, the last on paper
    finally:
        stop_embedded(home / "pgdata")
        shutil.rmtree(home, ignore_errors=True)
