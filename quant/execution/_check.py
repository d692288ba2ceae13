"""The ``pretrade_check`` stage: every generated order checked, in one batch.

With the sidecar (``POST /v1/book`` with the account's book and fresh marks,
then ``POST /v1/check``) for runs on the broker's account, with the risk engine
in process against the simulated book for backfills. Approved orders become
``approved``, denied ones ``rejected`` with their reason codes. Any sidecar
failure raises and nothing is approved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quant import ledger
from quant.execution._common import (
    BrokerHandle,
    run_info,
)
from quant.execution._gate import risk_gate
from quant.execution._market import session_bars, universe_sectors

if TYPE_CHECKING:
    from quant.pipeline import RunContext

__all__ = ["pretrade_check"]


def pretrade_check(run: RunContext) -> dict[str, Any]:
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
    settings, session = run.settings, run.session
    conn = run.connect()
    try:
        record = ledger.load_run(conn, run.dag_id, session, run.run_id)
        pending = ledger.orders(conn, record, ("generated",))
        summary: dict[str, Any] = {**run_info(record), "checked": len(pending)}
        if not pending:
            return summary | {
                "approved": 0,
                "rejected": 0,
                "reasons": {},
                "statuses": ledger.status_counts(conn, record),
            }
        with BrokerHandle(settings, record["broker"], record["account"], run.broker,
                          run.credentials) as b:
            account = b.account()
            held = b.positions()
        positions = {p.symbol: p.qty_shares for p in held}
        symbols = sorted({o["symbol"] for o in pending} | set(positions))
        bars = session_bars(conn, session, settings.providers, symbols, cache=run.relations)
        marks = {p.symbol: p.market_price_usd for p in held if p.market_price_usd > 0}
        marks |= {s: bar.close for s, bar in bars.items()}
        universe = universe_sectors(conn, settings.providers) or None
        with risk_gate(record, run) as gate:
            verdicts, state = gate.check(
                pending,
                cash_usd=account.cash_usd,
                positions=positions,
                marks=marks,
                universe=universe,
                session=session,
                strategy=settings.execution.strategy,
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
            "statuses": ledger.status_counts(conn, record),
        }
    finally:
        conn.close()

