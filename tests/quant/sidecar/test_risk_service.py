"""The sidecar service on the real PostgreSQL and the simulator broker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from quant.config import RiskSettings, Settings
from quant.db import connect
from quant.exceptions import DatabaseError
from quant.execution import Order, SimBroker
from quant.risk import Override, RiskOrder, TradingState
from quant.sidecar import PersistenceError, RiskService, StateStore

UNIVERSE = {"AAPL": "Technology", "MSFT": "Technology", "XOM": "Energy"}


def make_service(
    settings: Settings, broker: SimBroker | None = None, **risk: object
) -> RiskService:
    service = RiskService(
        RiskSettings(**risk),  # type: ignore[arg-type]
        store=StateStore(lambda: connect(settings)),
        broker_factory=(lambda: broker) if broker is not None else None,
    )
    service.start(sync_broker=broker is not None)
    return service


def events(settings: Settings) -> list[tuple[str, str, str]]:
    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "select kind, to_state, reason_code from ops.kill_switch_events order by event_id"
            )
            return cur.fetchall()
    finally:
        conn.close()


@pytest.fixture()
def sim(clean_db: Settings) -> SimBroker:
    broker = SimBroker(connect(clean_db), account=f"s-{uuid.uuid4().hex[:8]}")
    yield broker
    broker.close()


def test_marks_when_day_loss_past_limit_then_switch_trips_and_open_orders_cancelled(
    clean_db: Settings, sim: SimBroker
) -> None:
    sim.submit(Order(client_order_id="seed", symbol="AAPL", side="buy", qty_shares=1000))
    sim.fill_auction({"AAPL": 100.0}, at=datetime.now(UTC))
    for i in range(3):
        sim.submit(Order(client_order_id=f"open-{i}", symbol="MSFT", side="buy", qty_shares=10))
    service = make_service(clean_db, sim, daily_loss_limit_usd=5_000.0)
    service.apply_marks({"AAPL": 100.0, "MSFT": 400.0})
    assert service.state is TradingState.ACTIVE

    out = service.apply_marks({"AAPL": 94.0})  # -6,000 USD on 1,000 shares

    assert service.state is TradingState.HALTED
    assert out["breaches"][0]["code"] == "DAILY_LOSS_LIMIT"
    assert out["kill"]["cancel"]["remaining"] == 0
    assert sim.open_orders() == []
    kinds = events(clean_db)
    assert ("auto_kill", "HALTED", "DAILY_LOSS_LIMIT") in kinds
    assert ("cancel", "HALTED", "DAILY_LOSS_LIMIT") in kinds
    assert "TRADING_HALTED" in service.check([RiskOrder("n-1", "MSFT", "buy", 1, 400.0)])[0].reasons


def test_kill_then_new_service_on_same_database_restores_halted(clean_db: Settings) -> None:
    first = make_service(clean_db)
    first.kill("operator test", "halt", actor="test")
    second = make_service(clean_db)
    assert second.state is TradingState.HALTED
    assert [e[0] for e in events(clean_db)][-1] == "restore"
    second.resume("all clear", actor="test")
    assert make_service(clean_db).state is TradingState.ACTIVE


def test_start_when_database_unreachable_then_halted_with_reason() -> None:
    def broken() -> object:
        raise DatabaseError("cannot connect to postgresql://nowhere")

    service = RiskService(RiskSettings(), store=StateStore(broken))  # type: ignore[arg-type]
    service.start()
    assert service.state is TradingState.HALTED
    assert "cannot read the kill-switch state" in (service.fail_closed_reason or "")
    assert service.health()["trading_state"] == "HALTED"
    with pytest.raises(PersistenceError):
        service.resume("try", actor="test")
    assert service.state is TradingState.HALTED


def test_override_when_set_then_persisted_and_restored(clean_db: Settings) -> None:
    service = make_service(clean_db)
    service.set_override(
        "symbol", "aapl", Override(reduce_only=True, reason="position mismatch"), actor="reconcile"
    )
    restored = make_service(clean_db)
    assert restored.ctx.symbol_overrides["AAPL"].reduce_only
    restored.set_override("symbol", "AAPL", None, actor="ops")
    assert "AAPL" not in make_service(clean_db).ctx.symbol_overrides


def test_kill_when_flatten_then_reduce_only_orders_close_every_position(
    clean_db: Settings, sim: SimBroker
) -> None:
    sim.submit(Order(client_order_id="l", symbol="AAPL", side="buy", qty_shares=100))
    sim.submit(Order(client_order_id="s", symbol="XOM", side="sell", qty_shares=50))
    sim.fill_auction({"AAPL": 100.0, "XOM": 110.0}, at=datetime.now(UTC))
    service = make_service(clean_db, sim)
    out = service.kill("flatten test", "flatten", actor="test")
    assert service.state is TradingState.HALTED
    closing = {(o.symbol, o.side, o.qty_shares, o.reduce_only) for o in sim.open_orders()}
    assert closing == {("AAPL", "sell", 100, True), ("XOM", "buy", 50, True)}
    assert len(out["flatten"]["submitted"]) == 2
    sim.fill_auction({"AAPL": 99.0, "XOM": 111.0}, at=datetime.now(UTC))
    assert sim.positions() == []


def test_tick_when_feed_silent_during_market_hours_then_halts(clean_db: Settings) -> None:
    service = make_service(clean_db, stale_feed_s=30.0)
    service.market_open = lambda now: True
    service.apply_marks({"AAPL": 100.0}, now=1_000.0)
    assert service.tick(now=1_020.0) is None
    out = service.tick(now=1_031.0)
    assert out is not None and out["tripped"]
    assert service.state is TradingState.HALTED
    assert events(clean_db)[-2][2] == "STALE_FEED"


def test_check_when_burst_of_denials_then_halts(clean_db: Settings) -> None:
    service = make_service(clean_db, rejection_burst=5, rejection_window_s=60.0)
    bad = [RiskOrder(f"b-{i}", "NOPE", "buy", 1, 10.0) for i in range(5)]
    service.check(bad)
    assert service.state is TradingState.HALTED
    assert ("auto_kill", "HALTED", "REJECTION_BURST") in events(clean_db)


def test_load_book_when_restarted_mid_session_then_start_of_day_equity_kept(
    clean_db: Settings,
) -> None:
    service = make_service(clean_db)
    service.load_book(
        cash_usd=900_000.0, positions={"AAPL": 1000}, marks={"AAPL": 100.0}, universe=UNIVERSE,
        session="2027-01-15",
    )  # fmt: skip
    again = make_service(clean_db)
    again.load_book(
        cash_usd=900_000.0, positions={"AAPL": 1000}, marks={"AAPL": 97.0}, session="2027-01-15"
    )
    assert again.ctx.sod_equity_usd == pytest.approx(1_000_000.0)
    assert again.ctx.day_pnl_usd == pytest.approx(-3_000.0)
