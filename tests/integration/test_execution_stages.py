"""The execution stages on the simulator, checked by a real sidecar process."""

from __future__ import annotations

import pytest
from execution_world import SYMBOLS, WEIGHTS, load_world, run_stages

from quant.config import Settings
from quant.exceptions import ReconciliationError, SidecarError
from quant.execution import (
    client_order_id,
    generate_orders,
    pretrade_check,
    reconcile,
    submit_orders,
)
from quant.pipeline import run_context
from quant.sidecar import SidecarClient
from quant.testing.db import read
from quant.testing.sidecar_process import SidecarProcess, free_port

pytestmark = pytest.mark.integration


@pytest.fixture()
def settings(replay_settings: Settings) -> Settings:
    return replay_settings


def _orders(conn, dag_id: str) -> list[dict]:  # noqa: ANN001
    with conn.cursor() as cur:
        cur.execute(
            "select client_order_id, logical_date, symbol, side, qty_shares, status, "
            "reject_reasons, broker_order_id, filled_qty_shares from ops.orders "
            "where dag_id = %s order by logical_date, sequence",
            (dag_id,),
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _sim_orders(conn, account: str = "paper") -> list[tuple]:  # noqa: ANN001
    with conn.cursor() as cur:
        cur.execute(
            "select client_order_id, symbol, side, qty_shares, time_in_force, status "
            "from ops.sim_orders where account = %s order by client_order_id",
            (account,),
        )
        return cur.fetchall()


def test_stages_when_latest_session_then_orders_reach_paper_sim_and_fill_next_open(
    settings: Settings, db_conn, dag_id: str
) -> None:
    world = load_world(db_conn)
    d0, d1 = world.sessions[-3], world.sessions[-2]
    first = run_stages(settings, d0, "run-d0", dag_id)
    gen = first["generate"]
    assert (gen["broker"], gen["account"], gen["risk_check"]) == ("sim", "paper", "sidecar")
    orders = _orders(db_conn, dag_id)
    assert {o["symbol"] for o in orders} == set(SYMBOLS)
    assert all(o["side"] == "buy" for o in orders)
    # sizes: weight x equity / close, whole shares, FFF capped at 8% of its volume
    equity = gen["equity_usd"]
    closes = world.closes(d0)
    by_symbol = {o["symbol"]: o for o in orders}
    for symbol, weight in WEIGHTS.items():
        expected = int(weight * equity / closes[symbol])
        if symbol == "FFF":
            expected = min(expected, int(0.08 * SYMBOLS["FFF"][2]))
        assert by_symbol[symbol]["qty_shares"] == expected
    assert first["check"]["approved"] == len(orders) and first["check"]["rejected"] == 0
    assert first["submit"]["submitted"] == len(orders)
    sim = _sim_orders(db_conn)
    assert sorted(r[0] for r in sim) == sorted(o["client_order_id"] for o in orders)
    assert {r[4] for r in sim} == {"opg"} and {r[5] for r in sim} == {"open"}
    for o in orders:
        assert o["client_order_id"] == client_order_id(dag_id, d0, o["symbol"], o["side"])
        assert o["status"] == "submitted" and o["broker_order_id"]

    # next session: the simulator fills them at the open; reconcile books the fills
    second = run_stages(settings, d1, "run-d1", dag_id)
    assert second["generate"]["settled"]["fills"] == len(orders)
    rec = reconcile(run_context(d1, run_id="run-d1", settings=settings, dag_id=dag_id))
    assert rec["new_fills"] == len(orders) and rec["differences"] == []
    with db_conn.cursor() as cur:
        cur.execute(
            "select symbol, qty_shares from ops.positions where broker = 'sim' and "
            "account = 'paper' order by symbol"
        )
        book = dict(cur.fetchall())
        cur.execute(
            "select symbol, price_usd from ops.fills where account = 'paper' order by symbol"
        )
        fill_prices = dict(cur.fetchall())
    assert book == {s: by_symbol[s]["qty_shares"] for s in SYMBOLS}
    opens = world.opens(d1)
    for symbol, price in fill_prices.items():
        assert price == pytest.approx(opens[symbol] * (1 + 5 / 10_000))
    statuses = {o["status"] for o in _orders(db_conn, dag_id) if o["logical_date"] == d0}
    assert statuses == {"filled"}


def test_stages_when_rerun_then_same_orders_and_nothing_sent_twice(
    settings: Settings, db_conn, dag_id: str
) -> None:
    world = load_world(db_conn)
    d0 = world.sessions[-3]
    run_stages(settings, d0, "run-d0", dag_id)
    before = _orders(db_conn, dag_id)
    again = run_stages(settings, d0, "run-d0", dag_id)
    assert again["generate"]["reused"] is True
    assert again["check"]["checked"] == 0
    assert again["submit"]["submitted"] == 0
    assert _orders(db_conn, dag_id) == before
    assert len(_sim_orders(db_conn)) == len(before)


def test_pretrade_when_order_breaks_a_limit_then_stored_rejected_with_code_and_not_submitted(
    settings: Settings, db_conn, dag_id: str
) -> None:
    world = load_world(db_conn)
    d0 = world.sessions[-3]
    weights = dict(WEIGHTS) | {"AAA": 0.2}  # over the sidecar's 10% position weight
    out = run_stages(settings, d0, "run-d0", dag_id, weights=weights)
    assert out["check"]["rejected"] == 1
    orders = {o["symbol"]: o for o in _orders(db_conn, dag_id)}
    assert orders["AAA"]["status"] == "rejected"
    assert "POSITION_EXCEEDS_MAX_WEIGHT" in orders["AAA"]["reject_reasons"]
    assert orders["AAA"]["broker_order_id"] is None
    assert all(o["status"] == "submitted" for s, o in orders.items() if s != "AAA")
    assert all(o["reject_reasons"] == [] for s, o in orders.items() if s != "AAA")
    rows = read(
        db_conn,
        "select symbol, reject_details is not null, checked_at is not null from ops.orders "
        "where dag_id = %s",
        dag_id,
    )
    checked = {r[0]: r[1:] for r in rows}
    assert checked.pop("AAA") == (True, True)  # why, in detail, beside the codes
    assert set(checked.values()) == {(False, True)}
    assert "AAA" not in {r[1] for r in _sim_orders(db_conn)}


def test_reconcile_when_broker_position_differs_then_locks_symbol_records_and_raises(
    settings: Settings, replay_sidecar: SidecarProcess, db_conn, dag_id: str
) -> None:
    world = load_world(db_conn)
    d0, d1 = world.sessions[-3], world.sessions[-2]
    run_stages(settings, d0, "run-d0", dag_id)
    run_stages(settings, d1, "run-d1", dag_id)
    reconcile(run_context(d1, run_id="run-d1", settings=settings, dag_id=dag_id))
    with db_conn, db_conn.cursor() as cur:  # a trade the pipeline did not make
        cur.execute(
            "update ops.sim_positions set qty_shares = qty_shares + 7 "
            "where account = 'paper' and symbol = 'CCC'"
        )
    with pytest.raises(ReconciliationError, match="CCC") as err:
        reconcile(run_context(d1, run_id="run-d1", settings=settings, dag_id=dag_id))
    [diff] = err.value.breaks
    assert diff["broker_qty_shares"] - diff["expected_qty_shares"] == 7
    assert diff["locked"] is True
    client = SidecarClient(replay_sidecar.url, token=replay_sidecar.token)
    override = client.state()["book"]["symbol_overrides"]["CCC"]
    assert override["reduce_only"] is True
    with db_conn.cursor() as cur:
        cur.execute(
            "select symbol, locked, resolved_at from ops.reconciliation_breaks "
            "where account = 'paper'"
        )
        assert cur.fetchall() == [("CCC", True, None)]
    # the difference is corrected: the next reconciliation clears the lock
    with db_conn, db_conn.cursor() as cur:
        cur.execute(
            "update ops.sim_positions set qty_shares = qty_shares - 7 "
            "where account = 'paper' and symbol = 'CCC'"
        )
    out = reconcile(run_context(d1, run_id="run-d1", settings=settings, dag_id=dag_id))
    assert out["cleared_locks"] == ["CCC"]
    assert "CCC" not in client.state()["book"]["symbol_overrides"]
    with db_conn.cursor() as cur:
        cur.execute("select count(*) from ops.reconciliation_breaks where resolved_at is null")
        assert cur.fetchone()[0] == 0


def test_submit_when_sidecar_unreachable_then_fails_and_sim_gets_nothing(
    settings: Settings, db_conn, dag_id: str
) -> None:
    world = load_world(db_conn)
    d0 = world.sessions[-3]
    generate_orders(run_context(d0, run_id="r", settings=settings, dag_id=dag_id, latest_session=d0,
                                targets=WEIGHTS))
    pretrade_check(run_context(d0, run_id="r", settings=settings, dag_id=dag_id))
    down = settings.model_copy(update={"sidecar_url": f"http://127.0.0.1:{free_port()}"})
    with pytest.raises(SidecarError):
        submit_orders(run_context(d0, run_id="r", settings=down, dag_id=dag_id))
    assert _sim_orders(db_conn) == []
    assert {o["status"] for o in _orders(db_conn, dag_id)} == {"approved"}


def test_pretrade_when_sidecar_unreachable_then_raises_and_nothing_approved(
    settings: Settings, db_conn, dag_id: str
) -> None:
    world = load_world(db_conn)
    d0 = world.sessions[-3]
    down = settings.model_copy(update={"sidecar_url": f"http://127.0.0.1:{free_port()}"})
    generate_orders(run_context(d0, run_id="r", settings=down, dag_id=dag_id, latest_session=d0,
                                targets=WEIGHTS))
    with pytest.raises(SidecarError):
        pretrade_check(run_context(d0, run_id="r", settings=down, dag_id=dag_id))
    assert {o["status"] for o in _orders(db_conn, dag_id)} == {"generated"}
    assert submit_orders(run_context(d0, run_id="r", settings=settings, dag_id=dag_id))["submitted"] == 0


def test_dry_run_when_generated_and_checked_then_nothing_submitted(
    settings: Settings, db_conn, dag_id: str
) -> None:
    world = load_world(db_conn)
    d0 = world.sessions[-3]
    generate_orders(run_context(d0, run_id="r", settings=settings, dag_id=dag_id, latest_session=d0,
                                targets=WEIGHTS, dry_run=True))
    pretrade_check(run_context(d0, run_id="r", settings=settings, dag_id=dag_id))
    out = submit_orders(run_context(d0, run_id="r", settings=settings, dag_id=dag_id, dry_run=True))
    assert out["submitted"] == 0 and out["would_submit"] == len(WEIGHTS)
    assert _sim_orders(db_conn) == []


def test_backfill_when_run_then_own_sim_account_checked_in_process_without_sidecar(
    settings: Settings, db_conn, dag_id: str
) -> None:
    world = load_world(db_conn)
    d0, d1 = world.sessions[-5], world.sessions[-4]
    no_sidecar = settings.model_copy(update={"sidecar_url": f"http://127.0.0.1:{free_port()}"})
    for day, run_id in ((d0, "backfill__a"), (d1, "backfill__b")):
        gen = generate_orders(run_context(day, run_id=run_id, settings=no_sidecar, dag_id=dag_id,
                                          run_type="backfill", backfill_id=42,
                                          latest_session=world.sessions[-3], targets=WEIGHTS))
        assert (gen["broker"], gen["account"], gen["risk_check"]) == (
            "sim",
            "backfill-42",
            "in_process",
        )
        check = pretrade_check(run_context(day, run_id=run_id, settings=no_sidecar, dag_id=dag_id))
        assert check["rejected"] == 0
        submit_orders(run_context(day, run_id=run_id, settings=no_sidecar, dag_id=dag_id))
        reconcile(run_context(day, run_id=run_id, settings=no_sidecar, dag_id=dag_id))
    assert _sim_orders(db_conn, "paper") == []
    held = _sim_orders(db_conn, "backfill-42")
    assert {r[5] for r in held if r[0].startswith(f"q{d0:%Y%m%d}")} == {"filled"}
    with db_conn.cursor() as cur:
        cur.execute("select account from ops.sim_accounts order by account")
        assert [r[0] for r in cur.fetchall()] == ["backfill-42"]
