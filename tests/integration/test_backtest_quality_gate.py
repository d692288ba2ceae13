"""The backtest runs the DAG's data-quality gate on each session and stops where the DAG would.

The synthetic market is ingested and the marts built; one name's volume is then the same
figure on every day (as in a file of adjusted closes with a filler volume) and, after the
build, another name's bars of the third session are ten times too high. The gate passes
the first two sessions (a constant volume is no outlier: its z-score is 0, and the
``raw_bars.look_unadjusted`` warning is recorded) and fails the third: the backtest
stops there, naming the session and the check, or, with
``continue_on_quality_failure``, records the failures and trades every session.
"""

from __future__ import annotations

from typing import Any

import pytest

from quant.config import Settings
from quant.testing.db import execute, query, scalar
from quant.testing.marts import dbt_as_of, recent_synthetic_sessions

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def market(pg_settings: Settings) -> dict[str, Any]:
    settings = pg_settings
    days = recent_synthetic_sessions(settings, 5)
    flat, spiked = [r[0] for r in query(
        settings, "select distinct symbol from raw.bars where date = %s order by 1 limit 2", days[0]
    )]
    execute(settings, "update raw.bars set volume = 1000000 where symbol = %s", flat)
    dbt_as_of(settings, days[-1])
    execute(
        settings,
        "update raw.bars set open = open * 10, high = high * 10, low = low * 10, close = close * 10 "
        "where symbol = %s and date = %s",
        spiked, days[2],
    )
    return {"settings": settings, "days": days, "flat": flat, "spiked": spiked}


def test_backtest_when_session_fails_quality_gate_then_stops_there_naming_session_and_check(
    market: dict[str, Any],
) -> None:
    from quant.backtest import run_backtest
    from quant.exceptions import BacktestError

    settings, days = market["settings"], market["days"]
    with pytest.raises(BacktestError) as caught:
        run_backtest(days[0], days[-1], settings=settings, baselines=False, prepare=False)
    message = str(caught.value)
    assert f"data_quality failed for session {days[2]}" in message
    assert "raw_bars.no_unexplained_jump" in message and market["spiked"] in message
    assert "volume_zscore" not in message
    weights_on = {r[0] for r in query(
        settings, "select distinct session_date from ops.target_weights "
        "where session_date between %s and %s", days[0], days[-1],
    )}
    assert weights_on == {days[0], days[1]}  # nothing decided on or after the failed session
    warned = scalar(
        settings,
        "select bool_or(not success and unexpected::text like %s) from ops.dq_results "
        "where session_date = %s and check_name = 'raw_bars.look_unadjusted'",
        f"%{market['flat']}%", days[0],
    )
    assert warned is True


def test_backtest_when_continue_on_quality_failure_then_records_failures_and_trades_on(
    market: dict[str, Any],
) -> None:
    from quant.backtest import run_backtest

    settings, days = market["settings"], market["days"]
    result = run_backtest(days[0], days[-1], settings=settings, baselines=False, prepare=False,
                          continue_on_quality_failure=True)
    assert result.sessions == days
    assert set(result.strategy.weights["session"]) == set(days)
    failed = result.quality_failures
    assert days[2] in set(failed["session"]) and not {days[0], days[1]} & set(failed["session"])
    assert "raw_bars.no_unexplained_jump" in set(failed.loc[failed["session"] == days[2], "check"])
    figures = result.figures()["data_quality_failures"]
    assert figures[0]["session"] == days[2].isoformat()
    assert "raw_bars.no_unexplained_jump" in figures[0]["checks"]
