"""submit_orders on the simulator's batch path: one call, and crash / rerun safety.

Runs are backfills (their own simulator account, checked in process), so no
sidecar is needed; the worker "dies" by an exception that nothing may catch.
"""

from __future__ import annotations

from typing import Any

import pytest
from execution_world import WEIGHTS, load_world

from quant.config import Settings
from quant.db import connect
from quant.execution import (
    Order,
    SimBroker,
    generate_orders,
    pretrade_check,
    reconcile,
    submit_orders,
)
from quant.pipeline import run_context
from quant.testing.db import read

pytestmark = pytest.mark.integration

ACCOUNT = "backfill-77"


class Crash(BaseException):
    """The worker dies (not an Exception: nothing may catch it)."""


class Recording:
    """Passes calls to the simulator, counting them; can die before or after the batch."""

    def __init__(self, inner: SimBroker, crash: str | None = None) -> None:
        self.inner, self.crash = inner, crash
        self.name, self.account_name = inner.name, inner.account_name
        self.calls: dict[str, int] = {}

    def __getattr__(self, attr: str) -> Any:
        target = getattr(self.inner, attr)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[attr] = self.calls.get(attr, 0) + 1
            return target(*args, **kwargs)

        return call

    def submit_many(self, orders: list[Order]) -> Any:
        self.calls["submit_many"] = self.calls.get("submit_many", 0) + 1
        if self.crash == "before":
            raise Crash("worker killed before the batch reached the broker")
        placed = self.inner.submit_many(orders)
        if self.crash == "after":
            raise Crash("worker killed after the broker accepted the batch")
        return placed


@pytest.fixture()
def sim(clean_db: Settings) -> Any:
    conn = connect(clean_db)
    try:
        yield SimBroker(conn, account=ACCOUNT)
    finally:
        conn.close()


def _prepare(settings: Settings, conn, dag_id: str):  # noqa: ANN001
    world = load_world(conn)
    day = world.sessions[-5]
    gen = generate_orders(run_context(day, run_id="r", settings=settings, dag_id=dag_id,
                                      run_type="backfill", backfill_id=77,
                                      latest_session=world.sessions[-3], targets=WEIGHTS))
    assert (gen["broker"], gen["account"], gen["risk_check"]) == ("sim", ACCOUNT, "in_process")
    check = pretrade_check(run_context(day, run_id="r", settings=settings, dag_id=dag_id))
    assert check["approved"] == len(WEIGHTS)
    return world, day


def _orders(conn, dag_id: str) -> dict[str, tuple]:  # noqa: ANN001
    rows = read(
        conn,
        "select client_order_id, status, broker_order_id from ops.orders where dag_id = %s",
        dag_id,
    )
    return {r[0]: (r[1], r[2]) for r in rows}


def _at_broker(conn) -> list[str]:  # noqa: ANN001
    rows = read(
        conn, "select client_order_id from ops.sim_orders where account = %s order by 1", ACCOUNT
    )
    return [r[0] for r in rows]


def test_submit_when_simulator_then_one_batch_call_and_every_order_submitted(
    clean_db: Settings, db_conn, dag_id: str, sim: SimBroker
) -> None:
    _, day = _prepare(clean_db, db_conn, dag_id)
    broker = Recording(sim)
    out = submit_orders(
        run_context(day, run_id="r", settings=clean_db, dag_id=dag_id, broker=broker),
    )
    assert (out["submitted"], out["already_at_broker"], out["broker_rejected"]) == (6, 0, 0)
    assert broker.calls == {"submit_many": 1}  # no per-order submit or look-up
    orders = _orders(db_conn, dag_id)
    assert {s for s, _ in orders.values()} == {"submitted"}
    assert _at_broker(db_conn) == sorted(orders)
    placed = sim.orders_by_client_ids(list(orders))
    assert {cid: bid for cid, (_, bid) in orders.items()} == {
        cid: o.order_id for cid, o in placed.items()
    }


@pytest.mark.parametrize("crash", ["before", "after"])
def test_submit_when_worker_dies_around_the_batch_then_rerun_leaves_one_order_per_id(
    clean_db: Settings, db_conn, dag_id: str, sim: SimBroker, crash: str
) -> None:
    _, day = _prepare(clean_db, db_conn, dag_id)
    with pytest.raises(Crash):
        submit_orders(run_context(day, run_id="r", settings=clean_db, dag_id=dag_id,
                                  broker=Recording(sim, crash)))
    orders = _orders(db_conn, dag_id)
    # every order was marked (and committed) before the batch went out
    assert {s for s, _ in orders.values()} == {"submitting"}
    assert _at_broker(db_conn) == ([] if crash == "before" else sorted(orders))

    rerun = Recording(sim)
    out = submit_orders(
        run_context(day, run_id="r", settings=clean_db, dag_id=dag_id, broker=rerun),
    )
    if crash == "before":
        assert (out["submitted"], out["already_at_broker"]) == (6, 0)
        assert rerun.calls == {"orders_by_client_ids": 1, "submit_many": 1}
    else:
        assert (out["submitted"], out["already_at_broker"]) == (0, 6)
        assert rerun.calls == {"orders_by_client_ids": 1}
    orders = _orders(db_conn, dag_id)
    assert {s for s, _ in orders.values()} == {"submitted"}
    assert all(bid for _, bid in orders.values())
    assert _at_broker(db_conn) == sorted(orders)  # one broker order per client id

    again = submit_orders(
        run_context(day, run_id="r", settings=clean_db, dag_id=dag_id, broker=sim),
    )
    assert again["submitted"] == 0 and _at_broker(db_conn) == sorted(orders)


def test_submit_when_half_of_a_dead_batch_reached_the_broker_then_rerun_sends_the_other_half(
    clean_db: Settings, db_conn, dag_id: str, sim: SimBroker
) -> None:
    _, day = _prepare(clean_db, db_conn, dag_id)
    with pytest.raises(Crash):
        submit_orders(run_context(day, run_id="r", settings=clean_db, dag_id=dag_id,
                                  broker=Recording(sim, "before")))
    first = read(
        db_conn,
        "select client_order_id, symbol, side, qty_shares, time_in_force from ops.orders "
        "where dag_id = %s order by sequence limit 3",
        dag_id,
    )
    sim.submit_many(
        [
            Order(client_order_id=c, symbol=s, side=d, qty_shares=q, time_in_force=t)
            for c, s, d, q, t in first
        ]
    )
    out = submit_orders(run_context(day, run_id="r", settings=clean_db, dag_id=dag_id, broker=sim))
    assert (out["submitted"], out["already_at_broker"]) == (3, 3)
    assert _at_broker(db_conn) == sorted(_orders(db_conn, dag_id))


def test_submit_when_an_approved_id_is_at_the_broker_already_then_batch_falls_back_per_order(
    clean_db: Settings, db_conn, dag_id: str, sim: SimBroker
) -> None:
    _, day = _prepare(clean_db, db_conn, dag_id)
    cid = sorted(_orders(db_conn, dag_id))[0]
    there = sim.submit(Order(client_order_id=cid, symbol="AAA", side="buy", qty_shares=1))
    broker = Recording(sim)
    out = submit_orders(
        run_context(day, run_id="r", settings=clean_db, dag_id=dag_id, broker=broker),
    )
    # the batch is refused whole (nothing placed), then each order goes on its own:
    # looked up first (it is in flight), sent when the broker does not have it
    assert broker.calls["submit_many"] == 1
    assert (broker.calls["order_by_client_id"], broker.calls["submit"]) == (6, 5)
    assert (out["submitted"], out["already_at_broker"], out["broker_rejected"]) == (5, 1, 0)
    orders = _orders(db_conn, dag_id)
    assert orders[cid] == ("submitted", there.order_id)
    assert {s for s, _ in orders.values()} == {"submitted"}
    assert _at_broker(db_conn) == sorted(orders)


def test_reconcile_when_simulator_fills_then_book_and_order_statuses_recorded_in_batch(
    clean_db: Settings, db_conn, dag_id: str, sim: SimBroker
) -> None:
    world, day = _prepare(clean_db, db_conn, dag_id)
    submit_orders(run_context(day, run_id="r", settings=clean_db, dag_id=dag_id, broker=sim))
    nxt = world.sessions[world.sessions.index(day) + 1]
    # the next session's generate_orders lets the simulator fill at its open
    gen = generate_orders(run_context(nxt, run_id="r2", settings=clean_db, dag_id=dag_id,
                                      run_type="backfill", backfill_id=77,
                                      latest_session=world.sessions[-3], targets=WEIGHTS))
    fills = gen["settled"]["fills"]
    assert fills == len(WEIGHTS)
    broker = Recording(sim)
    rec = reconcile(run_context(nxt, run_id="r2", settings=clean_db, dag_id=dag_id, broker=broker))
    assert rec["new_fills"] == fills and rec["differences"] == []
    assert broker.calls.get("order_by_client_id", 0) == 0
    assert broker.calls["orders_by_client_ids"] == 1
    with db_conn.cursor() as cur:
        cur.execute(
            "select symbol, qty_shares from ops.positions where account = %s order by symbol",
            (ACCOUNT,),
        )
        book = dict(cur.fetchall())
        cur.execute(
            "select o.client_order_id, o.status, o.filled_qty_shares, o.avg_fill_price_usd, "
            "f.price_usd from ops.orders o join ops.fills f using (client_order_id) "
            "where o.dag_id = %s and o.logical_date = %s",
            (dag_id, day),
        )
        rows = cur.fetchall()
    db_conn.rollback()
    assert book == {p.symbol: p.qty_shares for p in sim.positions()}
    assert {r[1] for r in rows} == {"filled"}
    for _, _, filled, avg, price in rows:
        assert filled > 0 and avg == pytest.approx(price)
    again = reconcile(run_context(nxt, run_id="r2", settings=clean_db, dag_id=dag_id, broker=sim))
    assert again["new_fills"] == 0 and again["orders_updated"] == 0
