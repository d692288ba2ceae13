"""The ``generate_orders`` stage: the run's target weights become orders in the books.

Chooses the broker (:func:`~quant.execution.choose_broker`), lets the
simulator fill the earlier sessions' orders at this session's auction, turns
``ops.target_weights`` into orders (:func:`build_orders`) and records them
with status ``generated``. A rerun finds the orders of the date already there
and returns them unchanged.

Dry runs (``dry_run=True``) have orders and an execution record of their own
(their namespace and client order ids, :func:`~quant.execution.order_namespace`,
are their run's), generated from the same target weights against the account
as it stands: a dry run lets no simulated auction happen, rewinds no account
and never reuses, updates or takes over another run's orders; its stages see
only its own orders, ``submit_orders`` sends none and ``reconcile`` records
nothing. Every stage's summary says ``"dry_run"``.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from quant import ledger
from quant.exceptions import ExecutionError
from quant.execution._common import (
    BrokerHandle,
    calendar,
    run_info,
    time_in_force,
)
from quant.execution._corporate import ex_date_actions
from quant.execution._ids import client_order_id, order_namespace
from quant.execution._market import average_daily_volume, session_bars
from quant.execution._modes import BrokerChoice, choose_broker
from quant.execution._orders import build_orders
from quant.execution._settle import settle_simulator
from quant.typing import OrderType
from quant.venues.sim import rewind_sim_account

if TYPE_CHECKING:
    from quant.pipeline import RunContext

__all__ = ["generate_orders"]


# -- target weights ------------------------------------------------------------------------
def _target_weights(conn: Any, run_id: str, session: date) -> dict[str, float]:
    """The session's target weights (``ops.target_weights``, one set per session).

    An empty set is valid (all cash) when portfolio construction recorded the
    session in ``ops.portfolio_diagnostics``; no record at all is an error.
    """
    with conn.cursor() as cur:
        cur.execute("select to_regclass('ops.target_weights')")
        if cur.fetchone()[0] is None:
            raise ExecutionError(
                "ops.target_weights does not exist: portfolio construction has not run"
            )
        cur.execute(
            "select symbol, weight from ops.target_weights where session_date = %s", (session,)
        )
        rows = cur.fetchall()
        if not rows:
            cur.execute("select to_regclass('ops.portfolio_diagnostics')")
            recorded = False
            if cur.fetchone()[0] is not None:
                cur.execute(
                    "select 1 from ops.portfolio_diagnostics where session_date = %s", (session,)
                )
                recorded = cur.fetchone() is not None
            if not recorded:
                raise ExecutionError(
                    f"no target weights for {session} (run {run_id!r}): "
                    "run optimize_portfolio first"
                )
    return {r[0]: float(r[1]) for r in rows}


def generate_orders(run: RunContext) -> dict[str, Any]:
    """Turn the run's target weights into orders in ``ops.orders`` (status ``generated``).

    Parameters
    ----------
    run : RunContext
        The run: its session (logical date) and run id (recorded; the later stages find
        the run by it); ``dag_id``, ``run_type``, ``backfill_id``, ``requested_broker``
        and ``latest_session`` are the inputs of :func:`choose_broker` (``latest_session``
        defaults to the calendar's latest closed session now); ``broker``, when held, must
        be the adapter the safety rules choose (else :class:`ExecutionError`);
        ``credentials`` are the broker's (see :func:`open_broker`), default the
        environment. With ``dry_run`` (module docstring) the orders are generated in a
        namespace of their own (the run id's), recorded with ``dry_run`` true, so that
        :func:`submit_orders` never sends them and the session's real orders, earlier or
        later, are never touched; on the simulator the session's auction is left to the
        real run (``"settled"`` is None) and the orders are sized against the account as
        it stands; a separate simulator account that has orders for later sessions is
        refused (its real run would rewind it first). ``targets``, when held, are traded
        instead of ``ops.target_weights`` (a backtest's baseline book).

    Returns
    -------
    dict
        The broker choice, account equity and cash, orders (count, notional by
        side), dropped orders with reasons, and whether existing orders were reused.
    """
    settings, session, run_id, dry_run = run.settings, run.session, run.run_id, run.dry_run
    if not run_id:
        raise ExecutionError(f"generate_orders for {session} needs the run's id")
    latest_session = run.latest_session or calendar(settings).latest_closed_session()
    choice = choose_broker(
        settings,
        session=session,
        run_type=run.run_type,
        requested_broker=run.requested_broker,
        latest_session=latest_session,
        backfill_id=run.backfill_id,
        run_id=run_id,
    )
    dag_id = run.dag_id
    book = order_namespace(dag_id, choice.account, default_account=choice.is_default_account)
    namespace = order_namespace(
        dag_id,
        choice.account,
        default_account=choice.is_default_account,
        dry_run_id=run_id if dry_run else None,
    )
    conn = run.connect()
    try:
        rewound = None
        later = (
            choice.broker == "sim"
            and not choice.is_default_account
            and ledger.has_runs_after(conn, book, session)
        )
        if later and dry_run:
            raise ExecutionError(
                f"simulator account {choice.account!r} has orders for sessions after {session}: "
                "a real run would rewind it first, which a dry run must not do; "
                "run without dry_run to replay the session"
            )
        if later:
            cal = calendar(settings)
            rewound = rewind_sim_account(
                conn,
                account=choice.account,
                namespace=namespace,
                session=session,
                previous_session=cal.previous_session(session),
                cutoff=cal.open_at(session),
            )
        existing = ledger.find_run(conn, namespace, session)
        if existing is not None:
            # a dry run's namespace is its run's own: only real runs get here with a new id
            if existing["run_id"] != run_id:
                # a new DAG run of the same date (a manual rerun) takes over the date's orders
                ledger.take_over_run(conn, namespace, session, run_id)
                existing = {**existing, "run_id": run_id}
            orders = ledger.orders(conn, existing)
            return {
                **run_info(existing),
                "reused": True,
                "choice_reason": existing["choice_reason"],
                "equity_usd": existing["equity_usd"],
                "cash_usd": existing["cash_usd"],
                "orders": len(orders),
                "statuses": ledger.status_counts(conn, existing),
                "dropped": [],
            }
        booked = None
        if choice.broker != "sim" and not dry_run:
            # the broker applies the session's splits and dividends to the account itself:
            # the books follow, so that reconciliation expects what the broker shows
            actions = ex_date_actions(conn, session, settings.providers, calendar(settings))
            booked = len(ledger.book_broker_corporate_actions(
                conn, choice.broker, choice.account, actions))
            conn.commit()
        with BrokerHandle(settings, choice.broker, choice.account, run.broker,
                          run.credentials) as b:
            settled = None
            if choice.broker == "sim" and not dry_run:  # the auction fills other runs' orders
                settled = settle_simulator(b, conn, session, settings, cache=run.relations)
            account = b.account()
            positions = {p.symbol: p.qty_shares for p in b.positions()}
        weights = run.targets
        if weights is None:
            weights = _target_weights(conn, run_id, session)
        bars = session_bars(conn, session, settings.providers, cache=run.relations)
        ex = settings.execution
        adv = average_daily_volume(conn, session, settings.providers, ex.adv_sessions,
                                   cache=run.relations)
        plan = build_orders(
            weights,
            equity_usd=account.equity_usd,
            cash_usd=account.cash_usd,
            positions=positions,
            prices={s: b.close for s, b in bars.items()},
            adv_shares=adv,
            lot_sizes=ex.lot_sizes,
            min_notional_usd=ex.min_order_notional_usd,
            max_adv_participation=ex.max_adv_participation,
            cash_buffer_usd=ex.cash_buffer * account.equity_usd,
        )
        _record(conn, run, choice, namespace, account, plan)
        return {
            "logical_date": session.isoformat(),
            "run_id": run_id,
            "broker": choice.broker,
            "account": choice.account,
            "trading_mode": choice.trading_mode,
            "risk_check": choice.risk_check,
            "namespace": namespace,
            "reused": False,
            "rewound": rewound,
            "choice_reason": choice.reason,
            "dry_run": dry_run,
            "settled": settled,
            "corporate_events_booked": booked,
            "equity_usd": account.equity_usd,
            "cash_usd": account.cash_usd,
            "orders": len(plan.orders),
            "sells": sum(1 for o in plan.orders if o.side == "sell"),
            "buys": sum(1 for o in plan.orders if o.side == "buy"),
            "sell_notional_usd": sum(o.notional_usd for o in plan.orders if o.side == "sell"),
            "buy_notional_usd": sum(o.notional_usd for o in plan.orders if o.side == "buy"),
            "buy_scale": plan.buy_scale,
            "adv_capped": sum(1 for o in plan.orders if o.adv_capped),
            "dropped": plan.dropped,
        }
    finally:
        conn.close()


def _record(
    conn: Any, run: RunContext, choice: BrokerChoice, namespace: str, account: Any, plan: Any
) -> None:
    """Record the run and its orders in the books (a concurrent run's, if first, stand)."""
    session, run_id, dag_id = run.session, run.run_id, run.dag_id
    tif = str(time_in_force(run.settings))
    record = {
        "namespace": namespace, "logical_date": session, "run_id": run_id, "dag_id": dag_id,
        "run_type": run.run_type, "broker": choice.broker, "account": choice.account,
        "trading_mode": choice.trading_mode, "risk_check": choice.risk_check,
        "choice_reason": choice.reason, "dry_run": run.dry_run, "equity_usd": account.equity_usd,
        "cash_usd": account.cash_usd,
    }
    rows = [
        (
            client_order_id(namespace, session, o.symbol, o.side), namespace, session, run_id,
            dag_id, o.symbol, o.side, o.qty_shares, o.ref_price_usd, o.notional_usd,
            str(OrderType.MARKET), tif, o.target_weight, o.target_qty_shares,
            o.current_qty_shares, o.adv_capped, o.cash_capped, seq, choice.broker, choice.account,
        )
        for seq, o in enumerate(plan.orders)
    ]
    ledger.record_run(conn, record, rows)
