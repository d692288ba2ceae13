"""The ``pretrade_check`` stage: every generated order checked, in one batch.

With the sidecar (``POST /v1/book`` with the account's book and fresh marks,
then ``POST /v1/check``) for runs on the broker's account, with the risk engine
in process against the simulated book for backfills. Approved orders become
``approved``, denied ones ``rejected`` with their reason codes. Any sidecar
failure raises and nothing is approved.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from quant import ledger
from quant.execution._common import (
    DEFAULT_DAG_ID,
    BrokerHandle,
    as_date,
    calendar,
    connect,
    resolve_settings,
    run_info,
)
from quant.execution._market import session_bars, universe_sectors

if TYPE_CHECKING:
    from quant.config import Settings
    from quant.execution._broker import Broker
    from quant.sidecar.client import SidecarClient

__all__ = ["pretrade_check"]


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
    settings = resolve_settings(settings)
    session = as_date(session)
    conn = connect(settings)
    try:
        run = ledger.load_run(conn, dag_id, session, run_id)
        pending = ledger.orders(conn, run, ("generated",))
        summary: dict[str, Any] = {**run_info(run), "checked": len(pending)}
        if not pending:
            return summary | {
                "approved": 0,
                "rejected": 0,
                "reasons": {},
                "statuses": ledger.status_counts(conn, run),
            }
        with BrokerHandle(settings, run["broker"], run["account"], broker, credentials) as b:
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
        ledger.record_verdicts(conn, verdicts)  # every verdict in one statement
        approved_n = sum(1 for v in verdicts if v[1])
        return summary | {
            "trading_state": state,
            "approved": approved_n,
            "rejected": len(verdicts) - approved_n,
            "reasons": reasons,
            "statuses": ledger.status_counts(conn, run),
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
    from quant.sidecar.client import CheckOrder, SidecarClient

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

    now = calendar(settings).close_at(session).timestamp()
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
