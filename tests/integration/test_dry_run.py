"""A dry run of the execution stages next to the session's real run, on the simulator with
a real sidecar: it has orders and an execution record of its own, sends nothing, and leaves
the real run's orders, fills, positions and broker state as they were."""

from __future__ import annotations

import pytest
from execution_world import WEIGHTS, load_world, run_stages

from quant.config import Settings
from quant.exceptions import ExecutionError
from quant.execution import (
    SimBroker,
    client_order_id,
    generate_orders,
    order_namespace,
    reconcile,
)
from quant.pipeline import run_context
from quant.report import write_run_report
from quant.testing.db import read

pytestmark = pytest.mark.integration

# What a run leaves behind, at the broker (the simulator's tables) and in the books.
_RECORDS = {
    "ops.execution_runs": "namespace = %(namespace)s",
    "ops.orders": "namespace = %(namespace)s",
    "ops.fills": "broker = 'sim' and account = %(account)s",
    "ops.positions": "broker = 'sim' and account = %(account)s",
    "ops.reconciliation_breaks": "broker = 'sim' and account = %(account)s",
    "ops.sim_accounts": "account = %(account)s",
    "ops.sim_orders": "account = %(account)s",
    "ops.sim_fills": "account = %(account)s",
    "ops.sim_positions": "account = %(account)s",
}
# The columns of an order that say what it is (not which run, when, or under which id).
_WHAT = (
    "symbol, side, qty_shares, ref_price_usd, notional_usd, order_type, time_in_force, "
    "target_weight, target_qty_shares, current_qty_shares, adv_capped, cash_capped, sequence, "
    "broker, account, status, reject_reasons, filled_qty_shares"
)


@pytest.fixture()
def settings(replay_settings: Settings) -> Settings:
    return replay_settings


def _records(conn, namespace: str, account: str = "paper") -> dict[str, list[str]]:  # noqa: ANN001
    """Every row the runs of ``namespace`` on ``account`` left, as text (every column)."""
    out = {}
    with conn.cursor() as cur:
        for table, where in _RECORDS.items():
            cur.execute(
                f"select t::text from {table} as t where {where} order by 1",  # noqa: S608
                {"namespace": namespace, "account": account},
            )
            out[table] = [r[0] for r in cur.fetchall()]
    conn.rollback()
    return out


def _run_orders(conn, run_id: str, columns: str = _WHAT) -> list[dict]:  # noqa: ANN001
    with conn.cursor() as cur:
        cur.execute(
            f"select client_order_id, namespace, {columns} from ops.orders "  # noqa: S608
            "where run_id = %s order by sequence",
            (run_id,),
        )
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    conn.rollback()
    return rows


def _what(order: dict, *keep: str) -> dict:
    """An order without its id, namespace and status (unless kept)."""
    drop = {"client_order_id", "namespace", "status"} - set(keep)
    return {k: v for k, v in order.items() if k not in drop}


def _execution_row(conn, run_id: str) -> list[tuple]:  # noqa: ANN001
    return read(
        conn,
        "select namespace, logical_date, dry_run from ops.execution_runs where run_id = %s",
        run_id,
    )


def test_dry_run_when_session_already_traded_then_real_records_untouched_and_own_orders_unsent(
    settings: Settings, db_conn, dag_id: str
) -> None:
    world = load_world(db_conn)
    d0, d1 = world.sessions[-3], world.sessions[-2]
    run_stages(settings, d0, "real-d0", dag_id)
    real = run_stages(settings, d1, "real-d1", dag_id)  # fills d0's orders at d1's open
    reconcile(run_context(d1, run_id="real-d1", settings=settings, dag_id=dag_id))
    real_orders = _run_orders(db_conn, "real-d1")
    assert real["submit"]["submitted"] == len(real_orders) > 0
    before = _records(db_conn, dag_id)
    assert before["ops.fills"] and before["ops.positions"]

    dry = run_stages(settings, d1, "dry-d1", dag_id, dry_run=True)
    rec = reconcile(run_context(d1, run_id="dry-d1", settings=settings, dag_id=dag_id))

    assert _records(db_conn, dag_id) == before
    assert dry["generate"]["reused"] is False
    assert all(dry[stage]["dry_run"] is True for stage in ("generate", "check", "submit"))
    assert rec["dry_run"] is True and rec["new_fills"] == 0
    [(namespace, logical_date, is_dry)] = _execution_row(db_conn, "dry-d1")
    assert (logical_date, is_dry) == (d1, True) and namespace != dag_id
    own = _run_orders(db_conn, "dry-d1")
    assert {o["namespace"] for o in own} == {namespace}
    assert not {o["client_order_id"] for o in own} & {o["client_order_id"] for o in real_orders}
    # the same book and weights: what the real run generated, each order approved by the
    # sidecar that approved the real run's (no duplicate id), none sent
    assert [_what(o) for o in own] == [_what(o) for o in real_orders]
    assert {o["status"] for o in own} == {"approved"}
    assert dry["submit"]["submitted"] == 0 and dry["submit"]["would_submit"] == len(own)
    # the dry run's report shows its own record and orders, and says it was a dry run
    page = write_run_report(
        dag_id=dag_id, run_id="dry-d1", session=d1, stages=dry, settings=settings
    ).read_text()
    assert "dry run" in page
    assert all(o["client_order_id"] in page for o in own)
    assert not any(o["client_order_id"] in page for o in real_orders)


def test_real_run_when_session_had_a_dry_run_then_same_orders_and_ids_as_a_run_alone(
    settings: Settings, db_conn, dag_id: str
) -> None:
    world = load_world(db_conn)
    d0 = world.sessions[-3]
    alone_dag = f"{dag_id}_alone"
    alone = run_stages(settings, d0, "alone", alone_dag)
    alone_orders = _run_orders(db_conn, "alone")
    assert alone["submit"]["submitted"] == len(alone_orders) > 0
    paper = SimBroker.open(settings, account="paper")
    try:  # the next run starts from the same account
        assert paper.cancel_all() == len(alone_orders)
    finally:
        paper.close()

    dry = run_stages(settings, d0, "dry", dag_id, dry_run=True)
    real = run_stages(settings, d0, "real", dag_id)

    assert dry["generate"]["dry_run"] is True and dry["submit"]["submitted"] == 0
    assert real["generate"]["reused"] is False and real["generate"]["dry_run"] is False
    assert real["check"]["rejected"] == 0
    assert real["submit"]["submitted"] == len(alone_orders)
    real_orders = _run_orders(db_conn, "real")
    assert [o["client_order_id"] for o in real_orders] == [
        client_order_id(dag_id, d0, o["symbol"], o["side"]) for o in real_orders
    ]
    assert [o["client_order_id"] for o in alone_orders] == [
        client_order_id(alone_dag, d0, o["symbol"], o["side"]) for o in alone_orders
    ]
    assert [_what(o, "status") for o in real_orders] == [_what(o, "status") for o in alone_orders]
    assert {o["namespace"] for o in real_orders} == {dag_id}
    assert _execution_row(db_conn, "real") == [(dag_id, d0, False)]
    with db_conn.cursor() as cur:
        cur.execute(
            "select client_order_id from ops.sim_orders where account = 'paper' "
            "and status = 'open' order by client_order_id"
        )
        resting = [r[0] for r in cur.fetchall()]
    assert resting == sorted(o["client_order_id"] for o in real_orders)


def test_dry_run_when_backfill_account_has_later_sessions_then_refused_and_account_kept(
    settings: Settings, db_conn, dag_id: str
) -> None:
    world = load_world(db_conn)
    d0, d1 = world.sessions[-5], world.sessions[-4]
    backfill = {"run_type": "backfill", "backfill_id": 7, "latest_session": world.sessions[-3]}
    for day in (d0, d1):
        run_stages(settings, day, f"backfill-{day}", dag_id, **backfill)
        reconcile(run_context(day, run_id=f"backfill-{day}", settings=settings, dag_id=dag_id))
    namespace = order_namespace(dag_id, "backfill-7", default_account=False)
    before = _records(db_conn, namespace, "backfill-7")
    assert before["ops.orders"] and before["ops.sim_fills"]
    with pytest.raises(ExecutionError, match="rewind"):
        generate_orders(run_context(d0, run_id="dry", settings=settings, dag_id=dag_id,
                                    targets=WEIGHTS, dry_run=True, **backfill))
    assert _records(db_conn, namespace, "backfill-7") == before
    assert _execution_row(db_conn, "dry") == []
