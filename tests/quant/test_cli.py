"""The `quant` command line: clear errors for bad input."""

from __future__ import annotations

import os
import subprocess
import sys


def _quant(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quant.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_when_setting_invalid_then_exit_2_naming_setting() -> None:
    result = _quant("db", "url", QUANT_TRADING_MODE="yolo")
    assert result.returncode == 2
    assert "QUANT_TRADING_MODE" in result.stderr
    assert "yolo" in result.stderr


def test_run_when_date_not_a_session_then_refused_before_running() -> None:
    result = _quant("run", "--date", "2026-11-21")  # a Saturday
    assert result.returncode == 2
    assert "2026-11-21 is not a XNYS trading session" in result.stderr


def test_run_when_date_malformed_then_usage_error() -> None:
    result = _quant("run", "--date", "21/11/2026")
    assert result.returncode == 2
    assert "YYYY-MM-DD" in result.stderr


def test_run_when_date_before_start_date_then_exit_non_zero_saying_why() -> None:
    result = _quant("run", "--date", "2020-06-30")
    assert result.returncode != 0
    assert "before the daily_trading DAG's start date 2024-01-01" in result.stderr
    assert "QUANT_START_DATE=2020-06-30" in result.stderr
