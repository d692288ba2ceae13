"""Trading state machine transitions and the automatic triggers."""

from __future__ import annotations

from quant.risk import (
    KillMode,
    ReasonCode,
    RejectionBurstDetector,
    RiskContext,
    RiskLimits,
    TradingState,
    TradingStateMachine,
    feed_is_stale,
    find_breaches,
)


def test_kill_when_active_then_halted_and_resume_then_active() -> None:
    m = TradingStateMachine()
    event = m.trip(KillMode.HALT, reason="fat finger", actor="cli", manual=True)
    assert event is not None
    assert (event.kind, event.from_state, event.to_state) == ("kill", "ACTIVE", "HALTED")
    assert m.state is TradingState.HALTED
    resumed = m.resume(reason="checked", actor="cli")
    assert (resumed.from_state, resumed.to_state) == ("HALTED", "ACTIVE")
    assert m.state is TradingState.ACTIVE


def test_kill_when_reduce_mode_then_reducing_and_flatten_then_halted() -> None:
    m = TradingStateMachine()
    m.trip(KillMode.REDUCE, reason="r", actor="cli", manual=True)
    assert m.state is TradingState.REDUCING
    m.trip(KillMode.FLATTEN, reason="f", actor="cli", manual=True)
    assert m.state is TradingState.HALTED


def test_kill_when_halted_and_reduce_asked_then_stays_halted() -> None:
    m = TradingStateMachine(TradingState.HALTED)
    event = m.trip(KillMode.REDUCE, reason="r", actor="cli", manual=True)
    assert event is not None and event.to_state is TradingState.HALTED
    assert m.state is TradingState.HALTED


def test_auto_trip_when_already_as_strict_then_records_nothing() -> None:
    m = TradingStateMachine(TradingState.HALTED)
    assert (
        m.trip(
            KillMode.HALT,
            reason="loss",
            reason_code=ReasonCode.DAILY_LOSS_LIMIT,
            actor="monitor",
            manual=False,
        )
        is None
    )


def test_breaches_when_loss_past_limit_then_daily_loss_reported() -> None:
    ctx = RiskContext(RiskLimits(daily_loss_limit_pct=0.01, max_drawdown_pct=0.5))
    ctx.load_book(
        cash_usd=0.0, positions={"A": 1000}, marks={"A": 100.0}, now=0.0, universe={"A": "X"}
    )
    assert find_breaches(ctx) == []
    ctx.apply_marks({"A": 98.9}, 1.0)  # -1,100 on 100,000
    assert [b.code for b in find_breaches(ctx)] == [ReasonCode.DAILY_LOSS_LIMIT]


def test_stale_feed_when_market_closed_or_never_fed_then_not_stale() -> None:
    assert not feed_is_stale(None, 1000.0, 60.0, True)
    assert not feed_is_stale(0.0, 1000.0, 60.0, False)
    assert not feed_is_stale(0.0, 1000.0, None, True)
    assert feed_is_stale(0.0, 1000.0, 60.0, True)
    assert not feed_is_stale(950.0, 1000.0, 60.0, True)


def test_rejection_burst_when_threshold_reached_in_window_then_fires() -> None:
    d = RejectionBurstDetector(threshold=10, window_s=5.0)
    assert d.record(6, 0.0) is None
    assert d.record(3, 10.0) is None  # the first 6 fell out of the window
    assert d.record(7, 12.0) == 10
    assert RejectionBurstDetector(0, 5.0).record(1000, 0.0) is None
