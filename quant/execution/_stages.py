"""The execution stages of the daily DAG: generate, check, submit, reconcile.

Each is a plain function of the run's session and Airflow run id, returns a
JSON-serialisable summary, and is idempotent per logical date:

``generate_orders``
    Chooses the broker (:func:`~quant.execution.choose_broker`), lets the
    simulator fill the earlier sessions' orders at this session's auction,
    turns ``ops.target_weights`` into orders (:func:`build_orders`) and
    writes them to ``ops.orders`` with status ``generated``. A rerun finds the
    orders of the date already there and returns them unchanged.
dry runs (``dry_run=True``)
    A dry run has orders and an execution record of its own (its namespace and
    client order ids, :func:`~quant.execution.order_namespace`, are its run's),
    generated from the same target weights against the account as it stands:
    it lets no simulated auction happen, rewinds no account and never reuses,
    updates or takes over another run's orders; its stages see only its own
    orders, ``submit_orders`` sends none and ``reconcile`` records nothing.
    Every stage's summary says ``"dry_run"``.
``pretrade_check``
    Checks every ``generated`` order in one batch: with the sidecar
    (``POST /v1/book`` with the account's book and fresh marks, then
    ``POST /v1/check``) for runs on the broker's account, with the risk engine
    in process against the simulated book for backfills. Approved orders
    become ``approved``, denied ones ``rejected`` with their reason codes. Any
    sidecar failure raises and nothing is approved.
``submit_orders``
    Submits ``approved`` orders only, after asking the sidecar that it is up
    and not HALTED (fail closed: if it cannot be reached, nothing is sent).
    Each order is marked ``submitting`` before it is sent; a rerun looks
    ``submitting`` orders up at the broker by client order id and sends only
    what the broker does not have, so each id is one order at the broker and
    one row in ``ops.orders``. A broker with batch calls (the simulator,
    :class:`~quant.execution.BatchBroker`) gets the same steps a statement or
    a call each for all the run's orders instead of one per order.
``reconcile``
    Updates order statuses, records new fills in ``ops.fills``, applies them
    to ``ops.positions`` and compares with the broker's positions. A
    difference is recorded in ``ops.reconciliation_breaks``, the symbol is set
    reduce-only at the sidecar, and :class:`ReconciliationError` is raised; a
    symbol that matches again has its lock cleared.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from quant.exceptions import (
    BrokerError,
    BrokerUnavailableError,
    ExecutionError,
    ReconciliationError,
    TradingHaltedError,
)
from quant.execution._broker import BatchBroker
from quant.execution._ids import client_order_id, order_namespace
from quant.execution._market import average_daily_volume, session_bars, universe_sectors
from quant.execution._modes import BrokerChoice, choose_broker
from quant.execution._orders import build_orders
from quant.execution._position_math import next_position
from quant.execution._rewind import has_activity_from, rewind_sim_account
from quant.execution._types import BrokerOrder, Fill, Order, OrderStatus, OrderType, TimeInForce

if TYPE_CHECKING:
    from quant.config import Settings
    from quant.execution._broker import Broker
    from quant.sidecar import SidecarClient

__all__ = [
    "DEFAULT_DAG_ID",
    "generate_orders",
    "pretrade_check",
    "reconcile",
    "submit_orders",
]

DEFAULT_DAG_ID = "daily_trading"
_QTY_TOLERANCE = 1e-6
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ORDER_FIELDS = (
    "client_order_id, symbol, side, qty_shares, ref_price_usd, notional_usd, order_type, "
    "time_in_force, target_weight, current_qty_shares, status, reject_reasons, broker_order_id, "
    "filled_qty_shares, sequence, adv_capped, cash_capped"
)


# -- helpers ------------------------------------------------------------------------------
def _settings(settings: Settings | None) -> Settings:
    from quant.config import get_settings

    return settings or get_settings()


def _as_date(session: date | str) -> date:
    return session if isinstance(session, date) else date.fromisoformat(str(session))


def _connect(settings: Settings) -> Any:
    from quant.db import connect

    return connect(settings)


def _rows(cur: Any) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _execute_values(
    cur: Any,
    sql: str,
    rows: Sequence[Sequence[Any]],
    *,
    template: str | None = None,
    fetch: bool = False,
) -> list[tuple[Any, ...]]:
    """``execute_values`` of all ``rows`` in one statement (``sql`` has one ``VALUES %s``)."""
    from psycopg2.extras import execute_values

    out = execute_values(
        cur, sql, rows, template=template, page_size=max(len(rows), 1), fetch=fetch
    )
    return out if fetch else []


def _run_row(conn: Any, namespace: str, session: date) -> dict[str, Any] | None:
    with conn.cursor() as cur:
        cur.execute(
            "select * from ops.execution_runs where namespace = %s and logical_date = %s",
            (namespace, session),
        )
        rows = _rows(cur)
    return rows[0] if rows else None


def _load_run(conn: Any, dag_id: str, session: date, run_id: str) -> dict[str, Any]:
    """The execution run ``generate_orders`` recorded for this DAG run and date."""
    with conn.cursor() as cur:
        cur.execute(
            "select * from ops.execution_runs where dag_id = %s and logical_date = %s "
            "and run_id = %s order by created_at desc limit 1",
            (dag_id, session, run_id),
        )
        rows = _rows(cur)
    if not rows:
        raise ExecutionError(
            f"no orders were generated for {dag_id} run {run_id!r} on {session}: "
            "run generate_orders first"
        )
    return rows[0]


def _orders(
    conn: Any, run: Mapping[str, Any], statuses: tuple[str, ...] | None = None
) -> list[dict[str, Any]]:
    sql = f"select {_ORDER_FIELDS} from ops.orders where namespace = %s and logical_date = %s"
    params: list[Any] = [run["namespace"], run["logical_date"]]
    if statuses is not None:
        sql += " and status = any(%s)"
        params.append(list(statuses))
    with conn.cursor() as cur:
        cur.execute(sql + " order by sequence", params)
        return _rows(cur)


def _status_counts(conn: Any, run: Mapping[str, Any]) -> dict[str, int]:
    with conn.cursor() as cur:
        cur.execute(
            "select status, count(*) from ops.orders where namespace = %s and logical_date = %s "
            "group by status order by status",
            (run["namespace"], run["logical_date"]),
        )
        return {r[0]: int(r[1]) for r in cur.fetchall()}


def _run_info(run: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "logical_date": run["logical_date"].isoformat(),
        "run_id": run["run_id"],
        "broker": run["broker"],
        "account": run["account"],
        "trading_mode": run["trading_mode"],
        "risk_check": run["risk_check"],
        "namespace": run["namespace"],
        "dry_run": bool(run["dry_run"]),
    }


def _check_broker(broker: Broker, name: str, account: str) -> None:
    """Refuse a broker object that is not the one the safety rules chose."""
    if broker.name != name:
        raise ExecutionError(
            f"this run must use the {name!r} broker (account {account!r}), "
            f"got a {broker.name!r} adapter: refusing"
        )
    if name == "sim" and getattr(broker, "account_name", account) != account:
        raise ExecutionError(
            f"this run must use simulator account {account!r}, "
            f"got {getattr(broker, 'account_name', None)!r}: refusing"
        )


class _BrokerHandle:
    """The run's broker: the one passed in, or one opened (and closed) here."""

    def __init__(
        self,
        settings: Settings,
        name: str,
        account: str,
        broker: Broker | None,
        credentials: Mapping[str, Any] | None = None,
    ) -> None:
        from quant.execution._open import open_broker

        self.owned = broker is None
        self.broker = broker or open_broker(
            settings,
            broker=name,
            account=account if name == "sim" else None,
            credentials=credentials if name != "sim" else None,
        )
        _check_broker(self.broker, name, account)

    def __enter__(self) -> Broker:
        return self.broker

    def __exit__(self, *exc: object) -> None:
        close = getattr(self.broker, "close", None)
        if self.owned and close is not None:
            close()


def _calendar(settings: Settings) -> Any:
    from quant.calendar import get_calendar

    return get_calendar(settings.exchange)


def _tif(settings: Settings) -> TimeInForce:
    return TimeInForce.OPG if settings.execution.fill_auction == "open" else TimeInForce.CLS


# -- the simulator's market ------------------------------------------------------------------
def settle_simulator(
    broker: Any, conn: Any, session: date, settings: Settings | None = None
) -> dict[str, Any]:
    """Let the simulator's market happen for ``session``: resting orders (submitted by
    earlier sessions' runs) fill at this session's opening or closing auction
    (``QUANT_EXECUTION__FILL_AUCTION``) with the session's volume capping
    participation; whatever did not fill expires; positions are marked at the close.

    Called by :func:`generate_orders` for simulator accounts; the backtest can call it
    the same way. Idempotent: a second call finds no resting order.
    """
    settings = _settings(settings)
    cal = _calendar(settings)
    bars = session_bars(conn, session, settings.providers)
    auction = settings.execution.fill_auction
    prices = {s: (b.open if auction == "open" else b.close) for s, b in bars.items()}
    volumes = {s: b.volume for s, b in bars.items()}
    at = cal.open_at(session) if auction == "open" else cal.close_at(session)
    fills = broker.fill_auction(prices, at=at, auction=auction, volumes=volumes)
    expiring = [
        o.order_id
        for o in broker.open_orders()
        if o.time_in_force in (TimeInForce.DAY, _tif(settings))
    ]
    if isinstance(broker, BatchBroker):
        expired = broker.cancel_many(expiring)
    else:
        expired = sum(int(broker.cancel(order_id)) for order_id in expiring)
    broker.mark({s: b.close for s, b in bars.items()})
    return {
        "auction": auction,
        "fills": len(fills),
        "filled_shares": float(sum(f.qty_shares for f in fills)),
        "expired_orders": expired,
    }


# -- generate ----------------------------------------------------------------------------
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


def generate_orders(
    session: date | str,
    *,
    run_id: str,
    settings: Settings | None = None,
    broker: Broker | None = None,
    dry_run: bool = False,
    dag_id: str = DEFAULT_DAG_ID,
    run_type: str = "scheduled",
    backfill_id: str | int | None = None,
    requested_broker: str | None = None,
    latest_session: date | None = None,
    weights: Mapping[str, float] | None = None,
    credentials: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Turn the run's target weights into orders in ``ops.orders`` (status ``generated``).

    Parameters
    ----------
    session : date or str
        The run's trading session (logical date).
    run_id : str
        Airflow's run id (recorded; the later stages find the run by it).
    settings : Settings, optional
    broker : Broker, optional
        The adapter to use; it must be the one the safety rules choose (else
        :class:`ExecutionError`). Default: opened from the choice.
    dry_run : bool
        Generate the orders of a dry run (module docstring): in a namespace of
        their own (``run_id``'s), recorded with ``dry_run`` true, so that
        :func:`submit_orders` never sends them, even when called without
        ``dry_run``, and the session's real orders, earlier or later, are never
        touched. On the simulator the session's auction is left to the real run
        (``"settled"`` is None): the orders are sized against the account as it
        stands. A separate simulator account that has orders for later sessions
        is refused (its real run would rewind it first).
    dag_id, run_type, backfill_id, requested_broker, latest_session
        Inputs of :func:`choose_broker`; ``latest_session`` defaults to the
        calendar's latest closed session now.
    weights : mapping of str to float, optional
        Target weights (fractions of equity) instead of ``ops.target_weights``.
    credentials : mapping, optional
        Broker credentials (see :func:`open_broker`), e.g. resolved from an
        Airflow connection by the DAG task; default the environment. Every
        stage takes the same argument.

    Returns
    -------
    dict
        The broker choice, account equity and cash, orders (count, notional by
        side), dropped orders with reasons, and whether existing orders were reused.
    """
    settings = _settings(settings)
    session = _as_date(session)
    if latest_session is None:
        latest_session = _calendar(settings).latest_closed_session()
    choice = choose_broker(
        settings,
        session=session,
        run_type=run_type,
        requested_broker=requested_broker,
        latest_session=latest_session,
        backfill_id=backfill_id,
        run_id=run_id,
    )
    book = order_namespace(dag_id, choice.account, default_account=choice.is_default_account)
    namespace = order_namespace(
        dag_id,
        choice.account,
        default_account=choice.is_default_account,
        dry_run_id=run_id if dry_run else None,
    )
    conn = _connect(settings)
    try:
        rewound = None
        later = (
            choice.broker == "sim"
            and not choice.is_default_account
            and has_activity_from(conn, book, session)
        )
        if later and dry_run:
            raise ExecutionError(
                f"simulator account {choice.account!r} has orders for sessions after {session}: "
                "a real run would rewind it first, which a dry run must not do; "
                "run without dry_run to replay the session"
            )
        if later:
            cal = _calendar(settings)
            rewound = rewind_sim_account(
                conn,
                account=choice.account,
                namespace=namespace,
                session=session,
                previous_session=cal.previous_session(session),
                cutoff=cal.open_at(session),
            )
        existing = _run_row(conn, namespace, session)
        if existing is not None:
            # a dry run's namespace is its run's own: only real runs get here with a new id
            if existing["run_id"] != run_id:
                # a new DAG run of the same date (a manual rerun) takes over the date's orders
                with conn, conn.cursor() as cur:
                    cur.execute(
                        "update ops.execution_runs set run_id = %s, updated_at = now() "
                        "where namespace = %s and logical_date = %s",
                        (run_id, namespace, session),
                    )
                    cur.execute(
                        "update ops.orders set run_id = %s, updated_at = now() "
                        "where namespace = %s and logical_date = %s",
                        (run_id, namespace, session),
                    )
                existing = {**existing, "run_id": run_id}
            orders = _orders(conn, existing)
            return {
                **_run_info(existing),
                "reused": True,
                "choice_reason": existing["choice_reason"],
                "equity_usd": existing["equity_usd"],
                "cash_usd": existing["cash_usd"],
                "orders": len(orders),
                "statuses": _status_counts(conn, existing),
                "dropped": [],
            }
        with _BrokerHandle(settings, choice.broker, choice.account, broker, credentials) as b:
            settled = None
            if choice.broker == "sim" and not dry_run:  # the auction fills other runs' orders
                settled = settle_simulator(b, conn, session, settings)
            account = b.account()
            positions = {p.symbol: p.qty_shares for p in b.positions()}
        if weights is None:
            weights = _target_weights(conn, run_id, session)
        bars = session_bars(conn, session, settings.providers)
        ex = settings.execution
        adv = average_daily_volume(conn, session, settings.providers, ex.adv_sessions)
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
        _write_orders(
            conn,
            settings,
            choice,
            namespace,
            session,
            run_id,
            dag_id,
            run_type,
            dry_run,
            account,
            plan,
        )
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


def _write_orders(
    conn: Any,
    settings: Settings,
    choice: BrokerChoice,
    namespace: str,
    session: date,
    run_id: str,
    dag_id: str,
    run_type: str,
    dry_run: bool,
    account: Any,
    plan: Any,
) -> None:
    tif = str(_tif(settings))
    with conn, conn.cursor() as cur:
        cur.execute(
            "insert into ops.execution_runs (namespace, logical_date, run_id, dag_id, run_type, "
            "broker, account, trading_mode, risk_check, choice_reason, dry_run, equity_usd, "
            "cash_usd) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "on conflict (namespace, logical_date) do nothing returning namespace",
            (
                namespace,
                session,
                run_id,
                dag_id,
                run_type,
                choice.broker,
                choice.account,
                choice.trading_mode,
                choice.risk_check,
                choice.reason,
                dry_run,
                account.equity_usd,
                account.cash_usd,
            ),
        )
        if cur.fetchone() is None:
            return  # a concurrent run wrote them first: theirs stand
        rows = [
            (
                client_order_id(namespace, session, o.symbol, o.side),
                namespace,
                session,
                run_id,
                dag_id,
                o.symbol,
                o.side,
                o.qty_shares,
                o.ref_price_usd,
                o.notional_usd,
                str(OrderType.MARKET),
                tif,
                o.target_weight,
                o.target_qty_shares,
                o.current_qty_shares,
                o.adv_capped,
                o.cash_capped,
                seq,
                choice.broker,
                choice.account,
            )
            for seq, o in enumerate(plan.orders)
        ]
        if rows:
            _execute_values(
                cur,
                "insert into ops.orders (client_order_id, namespace, logical_date, run_id, dag_id, "
                "symbol, side, qty_shares, ref_price_usd, notional_usd, order_type, time_in_force, "
                "target_weight, target_qty_shares, current_qty_shares, adv_capped, cash_capped, "
                "sequence, broker, account, status) values %s",
                rows,
                template="(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                "%s, %s, %s, 'generated')",
            )


# -- pre-trade check ----------------------------------------------------------------------------
def pretrade_check(
    session: date | str,
    *,
    run_id: str,
    settings: Settings | None = None,
    client: SidecarClient | None = None,
    broker: Broker | None = None,
    dag_id: str = DEFAULT_DAG_ID,
    credentials: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Check the run's ``generated`` orders in one batch; record approvals and denials.

    Runs on the broker's account load the account's book and fresh marks into the
    sidecar (``POST /v1/book``), then ``POST /v1/check``. Backfill and replay runs
    run :class:`quant.risk.RiskEngine` in process against their simulated book,
    with the marks of the session's close: they never touch the live sidecar.

    Raises
    ------
    SidecarError
        The sidecar is unreachable, timed out or answered with an error: nothing
        is recorded, every order stays ``generated`` (so none can be submitted).
    """
    settings = _settings(settings)
    session = _as_date(session)
    conn = _connect(settings)
    try:
        run = _load_run(conn, dag_id, session, run_id)
        pending = _orders(conn, run, ("generated",))
        summary: dict[str, Any] = {**_run_info(run), "checked": len(pending)}
        if not pending:
            return summary | {
                "approved": 0,
                "rejected": 0,
                "reasons": {},
                "statuses": _status_counts(conn, run),
            }
        with _BrokerHandle(settings, run["broker"], run["account"], broker, credentials) as b:
            account = b.account()
            held = b.positions()
        positions = {p.symbol: p.qty_shares for p in held}
        symbols = sorted({o["symbol"] for o in pending} | set(positions))
        bars = session_bars(conn, session, settings.providers, symbols)
        marks = {p.symbol: p.market_price_usd for p in held if p.market_price_usd > 0}
        marks |= {s: bar.close for s, bar in bars.items()}
        universe = universe_sectors(conn, settings.providers) or None
        strategy = settings.execution.strategy
        if run["risk_check"] == "sidecar":
            # What a check leaves at the sidecar, for the rest of the session: the ids it
            # approved (a second check of one is denied DUPLICATE_CLIENT_ORDER_ID), the
            # approved quantities as in flight (until the next POST /v1/book, which every
            # check sends first, so a later run's exposures never count them), the day's
            # approval count (max_orders_per_day) and recent denials (rejection_burst).
            # A dry run's ids are its own (quant.execution._ids), never a real run's, so
            # a real run checked after it is not refused for them.
            verdicts, state = _check_with_sidecar(
                settings, client, pending, account, positions, marks, universe, session, strategy
            )
        else:
            verdicts, state = _check_in_process(
                settings, pending, account, positions, marks, universe, session, strategy
            )
        reasons: dict[str, int] = {}
        for _, _, codes, _ in verdicts:
            for code in codes:
                reasons[code] = reasons.get(code, 0) + 1
        if verdicts:
            with conn, conn.cursor() as cur:  # every verdict in one statement
                _execute_values(
                    cur,
                    "update ops.orders as o set status = v.status, reject_reasons = v.reasons, "
                    "reject_details = v.details, checked_at = now(), updated_at = now() "
                    "from (values %s) as v (client_order_id, status, reasons, details) "
                    "where o.client_order_id = v.client_order_id and o.status = 'generated'",
                    [
                        (
                            cid,
                            "approved" if approved else "rejected",
                            list(codes) if not approved else [],
                            json.dumps(details) if details else None,
                        )
                        for cid, approved, codes, details in verdicts
                    ],
                    template="(%s, %s, %s::text[], %s::jsonb)",
                )
        approved_n = sum(1 for v in verdicts if v[1])
        return summary | {
            "trading_state": state,
            "approved": approved_n,
            "rejected": len(verdicts) - approved_n,
            "reasons": reasons,
            "statuses": _status_counts(conn, run),
        }
    finally:
        conn.close()


def _check_with_sidecar(
    settings: Settings,
    client: SidecarClient | None,
    pending: list[dict[str, Any]],
    account: Any,
    positions: dict[str, float],
    marks: dict[str, float],
    universe: dict[str, str] | None,
    session: date,
    strategy: str,
) -> tuple[list[tuple[str, bool, list[str], list[dict[str, Any]]]], str]:
    from quant.sidecar import CheckOrder, SidecarClient

    own = client is None
    client = client or SidecarClient.from_settings(settings)
    try:
        client.load_book(
            cash_usd=account.cash_usd,
            positions=positions,
            marks=marks,
            universe=universe,
            session=session.isoformat(),
        )
        answer = client.check(
            [
                CheckOrder(
                    client_order_id=o["client_order_id"],
                    symbol=o["symbol"],
                    side=o["side"],
                    qty=float(o["qty_shares"]),
                    price=float(o["ref_price_usd"]),
                    strategy=strategy,
                )
                for o in pending
            ]
        )
    finally:
        if own:
            client.close()
    verdicts = [
        (v.client_order_id, v.approved, list(v.reasons), list(v.denials)) for v in answer.results
    ]
    return verdicts, answer.trading_state


def _check_in_process(
    settings: Settings,
    pending: list[dict[str, Any]],
    account: Any,
    positions: dict[str, float],
    marks: dict[str, float],
    universe: dict[str, str] | None,
    session: date,
    strategy: str,
) -> tuple[list[tuple[str, bool, list[str], list[dict[str, Any]]]], str]:
    from quant.risk import RiskContext, RiskEngine, RiskLimits, RiskOrder

    now = _calendar(settings).close_at(session).timestamp()
    ctx = RiskContext(RiskLimits.from_mapping(settings.risk.model_dump()))
    ctx.load_book(
        cash_usd=account.cash_usd,
        positions=positions,
        marks=marks,
        now=now,
        universe=universe,
        session=session.isoformat(),
    )
    results = RiskEngine(ctx).check_batch(
        [
            RiskOrder(
                o["client_order_id"],
                o["symbol"],
                o["side"],
                float(o["qty_shares"]),
                float(o["ref_price_usd"]),
                strategy,
            )
            for o in pending
        ],
        now=now,
    )
    verdicts = [
        (r.client_order_id, r.approved, list(r.reasons), [d.as_dict() for d in r.denials])
        for r in results
    ]
    return verdicts, str(ctx.state)


# -- submit ------------------------------------------------------------------------------------
def _is_reducing(order: Mapping[str, Any]) -> bool:
    current = float(order["current_qty_shares"])
    qty = float(order["qty_shares"])
    if order["side"] == "sell":
        return current > 0 and qty <= current + _QTY_TOLERANCE
    return current < 0 and qty <= -current + _QTY_TOLERANCE


def _mark_submitted(conn: Any, cid: str, placed: BrokerOrder) -> None:
    with conn, conn.cursor() as cur:
        cur.execute(
            "update ops.orders set status = 'submitted', broker_order_id = %s, "
            "submitted_at = coalesce(submitted_at, now()), updated_at = now() "
            "where client_order_id = %s",
            (placed.order_id, cid),
        )


def submit_orders(
    session: date | str,
    *,
    run_id: str,
    settings: Settings | None = None,
    broker: Broker | None = None,
    client: SidecarClient | None = None,
    dry_run: bool = False,
    dag_id: str = DEFAULT_DAG_ID,
    credentials: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Submit the run's approved orders (each client order id at most once).

    Before anything is sent, runs checked by the sidecar ask it for its health:
    unreachable, an error, or ``HALTED`` raises and nothing is submitted; in
    ``REDUCING`` only orders that shrink a position are sent (the others stay
    ``approved``). ``dry_run`` (or a run generated as a dry run) sends nothing.

    Raises
    ------
    SidecarError
        The sidecar cannot be reached or answered with an error.
    ExecutionError
        Trading is HALTED.
    BrokerUnavailableError
        The broker kept failing; orders already sent stay recorded, the order
        in flight stays ``submitting`` and a rerun looks it up before resending.
    """
    settings = _settings(settings)
    session = _as_date(session)
    conn = _connect(settings)
    try:
        run = _load_run(conn, dag_id, session, run_id)
        todo = _orders(conn, run, ("approved", "submitting"))
        summary: dict[str, Any] = {**_run_info(run), "dry_run": bool(dry_run or run["dry_run"])}
        state = None
        if run["risk_check"] == "sidecar":
            from quant.sidecar import SidecarClient

            own = client is None
            sidecar = client or SidecarClient.from_settings(settings)
            try:
                state = sidecar.health().get("trading_state")
            finally:
                if own:
                    sidecar.close()
            if state == "HALTED":
                raise TradingHaltedError(
                    "the risk sidecar is HALTED: no order submitted (resume it, then rerun)"
                )
        held_back = []
        if state == "REDUCING":
            held_back = [o["client_order_id"] for o in todo if not _is_reducing(o)]
            todo = [o for o in todo if _is_reducing(o)]
        summary |= {"trading_state": state, "held_back": len(held_back)}
        if summary["dry_run"]:
            return summary | {
                "would_submit": len(todo),
                "submitted": 0,
                "statuses": _status_counts(conn, run),
            }
        out = _Submission()
        if todo:
            with _BrokerHandle(settings, run["broker"], run["account"], broker, credentials) as b:
                if isinstance(b, BatchBroker):
                    _submit_batch(conn, b, todo, settings, out)
                else:
                    _submit_each(conn, b, todo, settings, out)
        return summary | {
            "submitted": out.submitted,
            "already_at_broker": out.found,
            "broker_rejected": out.refused,
            "errors": out.errors,
            "statuses": _status_counts(conn, run),
        }
    finally:
        conn.close()


@dataclass
class _Submission:
    """What a submission did: orders placed, found at the broker already, refused."""

    submitted: int = 0
    found: int = 0
    refused: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)


def _order_of(row: Mapping[str, Any], settings: Settings) -> Order:
    """The broker order for a row of ``ops.orders``."""
    return Order(
        client_order_id=row["client_order_id"],
        symbol=row["symbol"],
        side=row["side"],
        qty_shares=float(row["qty_shares"]),
        order_type=OrderType(row["order_type"]),
        time_in_force=TimeInForce(row["time_in_force"]) if row["time_in_force"] else _tif(settings),
        strategy=settings.execution.strategy,
    )


def _submit_each(
    conn: Any,
    b: Broker,
    rows: Sequence[Mapping[str, Any]],
    settings: Settings,
    out: _Submission,
) -> None:
    """Submit order by order: each is marked ``submitting`` (committed) before it is sent."""
    for row in rows:
        cid = row["client_order_id"]
        if row["status"] == "submitting":
            existing = b.order_by_client_id(cid)
            if existing is not None:
                _mark_submitted(conn, cid, existing)
                out.found += 1
                continue
        else:
            with conn, conn.cursor() as cur:
                cur.execute(
                    "update ops.orders set status = 'submitting', updated_at = now() "
                    "where client_order_id = %s",
                    (cid,),
                )
        order = _order_of(row, settings)
        try:
            placed = b.submit(order)
        except BrokerUnavailableError:
            raise
        except BrokerError as exc:
            existing = b.order_by_client_id(cid)
            if existing is not None:  # a duplicate: it is there already
                _mark_submitted(conn, cid, existing)
                out.found += 1
                continue
            out.refused += 1
            out.errors.append({"client_order_id": cid, "error": str(exc)})
            with conn, conn.cursor() as cur:
                cur.execute(
                    "update ops.orders set status = 'broker_rejected', "
                    "reject_details = %s, updated_at = now() "
                    "where client_order_id = %s",
                    (json.dumps({"broker_error": str(exc)}), cid),
                )
            continue
        _mark_submitted(conn, cid, placed)
        out.submitted += 1


def _submit_batch(
    conn: Any,
    b: Any,
    rows: Sequence[Mapping[str, Any]],
    settings: Settings,
    out: _Submission,
) -> None:
    """Submit in one call to a :class:`BatchBroker`, with the same guarantees as
    :func:`_submit_each`: orders left ``submitting`` by an interrupted run are
    looked up first (one call) and only the missing ones are sent; the others are
    marked ``submitting`` in one committed statement before the batch is sent, and
    ``submitted`` in one statement after. A batch the broker refuses (it places
    nothing) is retried order by order, so each refusal is recorded on its order.
    """
    inflight = [r["client_order_id"] for r in rows if r["status"] == "submitting"]
    there = b.orders_by_client_ids(inflight) if inflight else {}
    _mark_submitted_many(conn, there)
    out.found += len(there)
    send = [r for r in rows if r["client_order_id"] not in there]
    if not send:
        return
    orders = [_order_of(r, settings) for r in send]
    fresh = [r["client_order_id"] for r in send if r["status"] != "submitting"]
    if fresh:
        with conn, conn.cursor() as cur:
            cur.execute(
                "update ops.orders set status = 'submitting', updated_at = now() "
                "where client_order_id = any(%s)",
                (fresh,),
            )
    try:
        placed = b.submit_many(orders)
    except BrokerUnavailableError:
        raise
    except BrokerError:
        _submit_each(conn, b, [{**r, "status": "submitting"} for r in send], settings, out)
        return
    _mark_submitted_many(conn, {o.client_order_id: o for o in placed})
    out.submitted += len(placed)


def _mark_submitted_many(conn: Any, placed: Mapping[str, BrokerOrder]) -> None:
    """:func:`_mark_submitted` for many orders, in one statement."""
    if not placed:
        return
    with conn, conn.cursor() as cur:
        _execute_values(
            cur,
            "update ops.orders as o set status = 'submitted', broker_order_id = v.broker_order_id, "
            "submitted_at = coalesce(o.submitted_at, now()), updated_at = now() "
            "from (values %s) as v (client_order_id, broker_order_id) "
            "where o.client_order_id = v.client_order_id",
            [(cid, bo.order_id) for cid, bo in placed.items()],
        )


# -- reconcile ----------------------------------------------------------------------------------
_STATUS_OF = {
    OrderStatus.OPEN: "submitted",
    OrderStatus.PARTIALLY_FILLED: "partially_filled",
    OrderStatus.FILLED: "filled",
    OrderStatus.CANCELLED: "cancelled",
    OrderStatus.REJECTED: "broker_rejected",
}


def _apply_fills(cur: Any, broker: str, account: str, fills: Sequence[Fill]) -> None:
    """Apply fills, in the order given, to ``ops.positions`` (one read, one upsert)."""
    symbols = sorted({f.symbol for f in fills})
    cur.execute(
        "select symbol, qty_shares, avg_price_usd from ops.positions "
        "where broker = %s and account = %s and symbol = any(%s) for update",
        (broker, account, symbols),
    )
    book = {r[0]: (float(r[1]), float(r[2])) for r in cur.fetchall()}
    for f in fills:
        old_qty, old_avg = book.get(f.symbol, (0.0, 0.0))
        book[f.symbol] = next_position(old_qty, old_avg, f.signed_qty_shares, f.price_usd)
    _execute_values(
        cur,
        "insert into ops.positions (broker, account, symbol, qty_shares, avg_price_usd) "
        "values %s on conflict (broker, account, symbol) do update set "
        "qty_shares = excluded.qty_shares, avg_price_usd = excluded.avg_price_usd, "
        "updated_at = now()",
        [(broker, account, symbol, *book[symbol]) for symbol in symbols],
    )


def _refresh_orders(conn: Any, placed: Sequence[BrokerOrder]) -> int:
    """Copy the broker's status and filled quantity into ``ops.orders`` (one statement,
    one transaction); returns how many rows changed."""
    if not placed:
        return 0
    with conn, conn.cursor() as cur:
        _execute_values(
            cur,
            "update ops.orders as o set status = v.status, filled_qty_shares = v.filled, "
            "broker_order_id = v.broker_order_id, updated_at = now() "
            "from (values %s) as v (client_order_id, status, filled, broker_order_id) "
            "where o.client_order_id = v.client_order_id "
            "and (o.status <> v.status or o.filled_qty_shares <> v.filled)",
            [
                (bo.client_order_id, _STATUS_OF[bo.status], bo.filled_qty_shares, bo.order_id)
                for bo in placed
            ],
            template="(%s, %s, %s::double precision, %s)",
        )
        return cur.rowcount


def reconcile(
    session: date | str,
    *,
    run_id: str,
    settings: Settings | None = None,
    broker: Broker | None = None,
    client: SidecarClient | None = None,
    dag_id: str = DEFAULT_DAG_ID,
    credentials: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Record fills and compare the broker's positions with ``ops.positions``.

    Order statuses in ``ops.orders`` are refreshed from the broker, new fills
    are inserted into ``ops.fills`` (one row per broker fill id) and applied to
    ``ops.positions``. Every symbol whose quantities differ gets a row in
    ``ops.reconciliation_breaks`` and, for runs checked by the sidecar, a
    reduce-only override there; symbols whose earlier break now matches have
    their override cleared and the break resolved. A dry run's reconciliation
    touches neither the broker nor the books: it returns its orders' statuses.

    Raises
    ------
    ReconciliationError
        Some positions differ (after recording and locking them).
    """
    settings = _settings(settings)
    session = _as_date(session)
    conn = _connect(settings)
    try:
        run = _load_run(conn, dag_id, session, run_id)
        if run["dry_run"]:  # sent nothing: the account's fills and positions are not its own
            return {
                **_run_info(run),
                "orders_updated": 0,
                "new_fills": 0,
                "positions": None,
                "differences": [],
                "cleared_locks": [],
                "statuses": _status_counts(conn, run),
            }
        name, account = run["broker"], run["account"]
        with _BrokerHandle(settings, name, account, broker, credentials) as b:
            updated = 0
            with conn.cursor() as cur:
                cur.execute(
                    "select client_order_id from ops.orders where broker = %s and account = %s "
                    "and status in ('submitted', 'partially_filled', 'submitting') "
                    "order by logical_date, sequence",
                    (name, account),
                )
                live = [r[0] for r in cur.fetchall()]
            if isinstance(b, BatchBroker):
                found = b.orders_by_client_ids(live)
                updated = _refresh_orders(conn, [found[cid] for cid in live if cid in found])
            else:
                for cid in live:
                    bo = b.order_by_client_id(cid)
                    if bo is not None:
                        updated += _refresh_orders(conn, [bo])
            with conn.cursor() as cur:
                cur.execute(
                    "select max(filled_at) from ops.fills where broker = %s and account = %s",
                    (name, account),
                )
                last = cur.fetchone()[0]
            since = _EPOCH if last is None else last - timedelta(seconds=1)
            fills = b.fills_since(since)
            broker_positions = {p.symbol: float(p.qty_shares) for p in b.positions()}
        new_fills = 0
        with conn, conn.cursor() as cur:
            ordered: list[Fill] = []  # oldest first, each fill id once
            seen: set[str] = set()
            for f in sorted(fills, key=lambda f: (f.filled_at, f.fill_id)):
                if f.fill_id not in seen:
                    seen.add(f.fill_id)
                    ordered.append(f)
            inserted: set[str] = set()
            if ordered:
                inserted = {
                    r[0]
                    for r in _execute_values(
                        cur,
                        "insert into ops.fills (broker, account, fill_id, order_id, "
                        "client_order_id, symbol, side, qty_shares, price_usd, commission_usd, "
                        "filled_at) values %s "
                        "on conflict (broker, account, fill_id) do nothing returning fill_id",
                        [
                            (
                                name,
                                account,
                                f.fill_id,
                                f.order_id,
                                f.client_order_id,
                                f.symbol,
                                f.side,
                                f.qty_shares,
                                f.price_usd,
                                f.commission_usd,
                                f.filled_at,
                            )
                            for f in ordered
                        ],
                        fetch=True,
                    )
                }
            new = [f for f in ordered if f.fill_id in inserted]
            new_fills = len(new)
            if new:
                _apply_fills(cur, name, account, new)
                cur.execute(
                    "update ops.orders as o set avg_fill_price_usd = coalesce(("
                    "select sum(f.qty_shares * f.price_usd) / nullif(sum(f.qty_shares), 0) "
                    "from ops.fills as f where f.broker = %s and f.account = %s "
                    "and f.client_order_id = o.client_order_id), o.avg_fill_price_usd) "
                    "where o.client_order_id = any(%s)",
                    (name, account, sorted({f.client_order_id for f in new})),
                )
            cur.execute(
                "select symbol, qty_shares from ops.positions where broker = %s and account = %s",
                (name, account),
            )
            book = {r[0]: float(r[1]) for r in cur.fetchall() if abs(r[1]) > _QTY_TOLERANCE}
            cur.execute(
                "select distinct symbol from ops.reconciliation_breaks "
                "where broker = %s and account = %s and resolved_at is null",
                (name, account),
            )
            open_breaks = {r[0] for r in cur.fetchall()}
        differences = [
            {
                "symbol": s,
                "expected_qty_shares": book.get(s, 0.0),
                "broker_qty_shares": broker_positions.get(s, 0.0),
            }
            for s in sorted(set(book) | set(broker_positions))
            if abs(book.get(s, 0.0) - broker_positions.get(s, 0.0)) > _QTY_TOLERANCE
        ]
        use_sidecar = run["risk_check"] == "sidecar"
        sidecar = None
        if use_sidecar and (differences or open_breaks):
            from quant.sidecar import SidecarClient

            sidecar = client or SidecarClient.from_settings(settings)
        try:
            for d in differences:
                d["locked"], d["lock_error"] = _lock(sidecar, d, session)
                with conn, conn.cursor() as cur:
                    if d["symbol"] in open_breaks:
                        continue
                    cur.execute(
                        "insert into ops.reconciliation_breaks (broker, account, symbol, "
                        "logical_date, run_id, expected_qty_shares, broker_qty_shares, locked, "
                        "lock_error) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        (
                            name,
                            account,
                            d["symbol"],
                            session,
                            run_id,
                            d["expected_qty_shares"],
                            d["broker_qty_shares"],
                            d["locked"],
                            d["lock_error"],
                        ),
                    )
            cleared = []
            for symbol in sorted(open_breaks - {d["symbol"] for d in differences}):
                if sidecar is not None:
                    sidecar.set_override(
                        "symbol",
                        symbol,
                        reason="reconciliation: positions match again",
                        clear=True,
                        actor="reconcile",
                    )
                with conn, conn.cursor() as cur:
                    cur.execute(
                        "update ops.reconciliation_breaks set resolved_at = now(), "
                        "resolved_run_id = %s where broker = %s and account = %s and symbol = %s "
                        "and resolved_at is null",
                        (run_id, name, account, symbol),
                    )
                cleared.append(symbol)
        finally:
            if sidecar is not None and client is None:
                sidecar.close()
        summary = {
            **_run_info(run),
            "orders_updated": updated,
            "new_fills": new_fills,
            "positions": len(broker_positions),
            "differences": differences,
            "cleared_locks": cleared,
            "statuses": _status_counts(conn, run),
        }
        if differences:
            listed = ", ".join(
                f"{d['symbol']} ops.positions {d['expected_qty_shares']:g} vs broker "
                f"{d['broker_qty_shares']:g}" + (" (locked reduce-only)" if d["locked"] else "")
                for d in differences
            )
            raise ReconciliationError(
                f"reconciliation of {name} account {account!r} on {session}: "
                f"{len(differences)} position(s) differ: {listed}",
                differences,
            )
        return summary
    finally:
        conn.close()


def _lock(
    sidecar: SidecarClient | None, diff: Mapping[str, Any], session: date
) -> tuple[bool, str | None]:
    """Set the symbol reduce-only at the sidecar; (locked, error)."""
    from quant.exceptions import SidecarError

    if sidecar is None:
        return False, "no sidecar for this run (simulator account)"
    try:
        sidecar.set_override(
            "symbol",
            diff["symbol"],
            reduce_only=True,
            reason=(
                f"reconciliation {session}: ops.positions {diff['expected_qty_shares']:g} vs "
                f"broker {diff['broker_qty_shares']:g}"
            ),
            actor="reconcile",
        )
    except SidecarError as exc:
        return False, str(exc)
    return True, None
