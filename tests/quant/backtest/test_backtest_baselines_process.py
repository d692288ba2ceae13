"""The baselines' process: its failures reach the backtest as BacktestError, never silence."""

from __future__ import annotations

import socket
from datetime import date

import pytest

from quant.backtest._baselines import Baselines
from quant.exceptions import BacktestError


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_finish_when_process_cannot_reach_database_then_backtest_error_says_why(pg_settings):
    url = f"postgresql://nobody:secret@127.0.0.1:{_closed_port()}/quant"
    settings = pg_settings.model_copy(update={"database_url": url})
    baselines = Baselines("test", settings, [date(2024, 1, 2), date(2024, 1, 3)])
    try:
        with pytest.raises(BacktestError, match=r"baselines: DatabaseError: cannot connect"):
            baselines.send(date(2024, 1, 2), "run")
            baselines.finish()
    finally:
        baselines.stop()
    assert baselines.process.returncode == 1


def test_stop_when_process_waits_for_sessions_then_it_ends(pg_settings):
    baselines = Baselines("test", pg_settings, [date(2024, 1, 2)])
    baselines.stop()
    assert baselines.process.returncode is not None
