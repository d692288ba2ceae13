"""generate_orders on PostgreSQL: weights from ops.target_weights, settings, safety checks."""

from __future__ import annotations

import pytest
from execution_world import load_world

from quant.config import Settings
from quant.exceptions import ConfigurationError, ExecutionError
from quant.execution import AlpacaBroker, SimBroker, generate_orders, open_broker
from quant.pipeline import run_context

pytestmark = pytest.mark.integration


def _weights(conn, day, weights: dict[str, float], run_id: str = "r") -> None:  # noqa: ANN001
    with conn, conn.cursor() as cur:
        for symbol, weight in weights.items():
            cur.execute(
                "insert into ops.target_weights (run_id, session_date, symbol, weight, method) "
                "values (%s, %s, %s, %s, 'top_k')",
                (run_id, day, symbol, weight),
            )


def test_generate_when_target_weights_stored_then_orders_follow_them(
    clean_db: Settings, db_conn
) -> None:
    world = load_world(db_conn)
    day = world.sessions[-3]
    _weights(db_conn, day, {"AAA": 0.05, "CCC": 0.03, "BBB": 0.0})
    out = generate_orders(
        run_context(day, run_id="r", settings=clean_db, dag_id="gen_a", latest_session=day),
    )
    assert out["orders"] == 2 and out["buys"] == 2
    with db_conn.cursor() as cur:
        cur.execute("select symbol, qty_shares from ops.orders where dag_id = 'gen_a'")
        got = dict(cur.fetchall())
    closes = world.closes(day)
    assert got == {
        "AAA": int(0.05 * out["equity_usd"] / closes["AAA"]),
        "CCC": int(0.03 * out["equity_usd"] / closes["CCC"]),
    }


def test_generate_when_no_target_weights_then_fails_loudly(clean_db: Settings, db_conn) -> None:
    world = load_world(db_conn)
    day = world.sessions[-3]
    with pytest.raises(ExecutionError, match="no target weights"):
        generate_orders(
            run_context(day, run_id="r", settings=clean_db, dag_id="gen_b", latest_session=day),
        )
    with db_conn.cursor() as cur:
        cur.execute("select count(*) from ops.orders")
        assert cur.fetchone()[0] == 0


def test_generate_when_lot_sizes_configured_then_orders_in_lots(
    clean_db: Settings, db_conn
) -> None:
    world = load_world(db_conn)
    day = world.sessions[-3]
    execution = clean_db.execution.model_copy(update={"lot_sizes": {"AAA": 100}})
    settings = clean_db.model_copy(update={"execution": execution})
    generate_orders(run_context(day, run_id="r", settings=settings, dag_id="gen_c",
                                latest_session=day, targets={"AAA": 0.05}))
    with db_conn.cursor() as cur:
        cur.execute("select qty_shares from ops.orders where dag_id = 'gen_c'")
        [(qty,)] = cur.fetchall()
    assert qty > 0 and qty % 100 == 0


def test_generate_when_given_a_broker_the_rules_did_not_choose_then_refused(
    clean_db: Settings, db_conn
) -> None:
    world = load_world(db_conn)
    day = world.sessions[-3]
    paper = SimBroker(db_conn, account="paper")
    with pytest.raises(ExecutionError, match="backfill-5"):
        generate_orders(run_context(day, run_id="r", settings=clean_db, dag_id="gen_d",
                                    run_type="backfill", backfill_id=5,
                                    latest_session=world.sessions[-1], broker=paper,
                                    targets={"AAA": 0.05}))


def test_open_broker_when_named_then_that_adapter_or_a_clear_error(
    clean_db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = open_broker(clean_db, account="acct-x")
    try:
        assert isinstance(sim, SimBroker) and sim.account_name == "acct-x"
        assert sim.account().cash_usd == clean_db.execution.sim_initial_cash_usd
    finally:
        sim.close()
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="APCA_API_KEY_ID"):
        open_broker(clean_db, broker="alpaca")
    alpaca = open_broker(
        clean_db,
        broker="alpaca",
        credentials={"api_key": "k", "secret_key": "s", "base_url": "http://127.0.0.1:9"},
    )
    assert isinstance(alpaca, AlpacaBroker) and alpaca.paper is True


def test_sidecar_broker_factory_when_alpaca_configured_then_opens_the_adapter(
    clean_db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quant.sidecar._server import broker_factory

    monkeypatch.setenv("APCA_API_KEY_ID", "k")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "s")
    monkeypatch.setenv("APCA_API_BASE_URL", "http://127.0.0.1:9")
    factory = broker_factory(clean_db.model_copy(update={"broker": "alpaca"}))
    assert isinstance(factory(), AlpacaBroker)
