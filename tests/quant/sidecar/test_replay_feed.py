"""The bar-replay mark feed drives the intraday monitor."""

from __future__ import annotations

import asyncio

import pytest

from quant.config import RiskSettings
from quant.risk import TradingState
from quant.sidecar import RiskService
from quant.sidecar._feed import bar_paths, replay_feed


def test_bar_paths_when_bar_closes_down_then_path_visits_high_then_low_and_ends_at_close() -> None:
    paths = bar_paths({"A": (100.0, 104.0, 90.0, 95.0)}, steps=7)
    prices = [p["A"] for p in paths]
    assert prices[0] == 100.0 and prices[-1] == 95.0
    assert max(prices) == pytest.approx(104.0) and min(prices) == pytest.approx(90.0)
    assert prices.index(max(prices)) < prices.index(min(prices))


def test_replay_when_intraday_low_breaches_daily_loss_then_halts_within_that_batch() -> None:
    service = RiskService(RiskSettings(daily_loss_limit_usd=5_000.0))
    service.start()
    service.load_book(cash_usd=0.0, positions={"A": 1_000}, marks={"A": 100.0}, universe={"A": "X"})
    batches = bar_paths({"A": (100.0, 101.0, 94.0, 99.0)}, steps=4)  # 100, 101, 94, 99
    assert [b["A"] for b in batches] == pytest.approx([100.0, 101.0, 94.0, 99.0])
    asyncio.run(replay_feed(batches[:2], interval_s=0.0)(service))
    assert service.state is TradingState.ACTIVE
    asyncio.run(replay_feed(batches[2:3], interval_s=0.0)(service))
    assert service.state is TradingState.HALTED
    assert service.machine.last_event is not None
    assert service.machine.last_event.reason_code == "DAILY_LOSS_LIMIT"
