"""What a run report shows, read from the pipeline's tables (raw.* and ops.* only).

Every reader returns an empty result when its tables have no rows for the run
(a first run, a run that failed early), so each section of the page can say
so instead of failing. The dbt schemas are not read: they may not exist yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from quant import ledger

__all__ = ["RunData", "load_run_data"]

EQUITY_SESSIONS = 260
"""Most sessions of the equity, turnover and model histories shown (about a year)."""

SENT_STATUSES = frozenset(
    {"submitting", "submitted", "partially_filled", "filled", "cancelled", "broker_rejected"}
)
"""Order statuses that mean the order left for the broker."""


@dataclass(frozen=True, slots=True)
class RunData:
    """The rows behind one run report.

    ``execution`` is the run's own ``ops.execution_runs`` row (``None`` when the
    run generated no orders: it failed early, or the session needed none);
    ``orders`` are the orders recorded under the run's id. ``account`` is the
    row whose account the equity curve shows: the run's own, else the latest
    account the DAG traded up to the session, as ``account_source`` says.
    """

    session: date
    execution: dict[str, Any] | None
    account: dict[str, Any] | None
    account_source: str
    equity: list[tuple[date, float, float]]  # (session, equity_usd, cash_usd)
    weights: list[tuple[str, str, float]]  # (symbol, sector, weight)
    diagnostics: list[dict[str, Any]]
    models: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    dq: list[dict[str, Any]]
    kill_events: list[dict[str, Any]]
    market: dict[str, Any]
    # splits, dividends and closings the account met over the sessions its equity shows
    corporate_events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def trading_state(self) -> str | None:
        """The sidecar's trading state after its latest recorded event (None: no event yet)."""
        return self.kill_events[0]["to_state"] if self.kill_events else None

    @property
    def sent_orders(self) -> int:
        """Orders of the run that left for the broker."""
        return sum(1 for o in self.orders if o["status"] in SENT_STATUSES)

    @property
    def dry_run(self) -> bool:
        """Whether the run's own execution record says it was a dry run."""
        return bool(self.execution is not None and self.execution["dry_run"])


def _dicts(cur: Any) -> list[dict[str, Any]]:
    names = [c.name for c in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _weights(cur: Any, session: date) -> list[tuple[str, str, float]]:
    cur.execute(
        """
        select w.symbol, coalesce(s.sector, 'Unknown'), w.weight
        from ops.target_weights w
        left join lateral (
            select sector from raw.symbols where symbol = w.symbol order by provider limit 1
        ) s on true
        where w.session_date = %s and w.weight <> 0
        order by abs(w.weight) desc, w.symbol
        """,
        (session,),
    )
    return [(sym, sector, float(weight)) for sym, sector, weight in cur.fetchall()]


def _diagnostics(cur: Any, session: date) -> list[dict[str, Any]]:
    cur.execute(
        """
        select * from (
            select session_date, method, method_used, stage, fallback_used, turnover,
                   gross_exposure, net_exposure, n_names, ex_ante_vol
            from ops.portfolio_diagnostics where session_date <= %s
            order by session_date desc limit %s
        ) recent order by session_date
        """,
        (session, EQUITY_SESSIONS),
    )
    return _dicts(cur)


def _models(cur: Any, session: date) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    cur.execute(
        """
        select model_id, trained_through, status, validation_rank_ic,
               (metrics -> 'validation' ->> 'hit_rate')::double precision as hit_rate,
               (metrics -> 'validation' ->> 'icir')::double precision as icir,
               (metrics -> 'tradeable' ->> 'icir')::double precision as tradeable_icir,
               train_rows, train_sessions
        from ops.models where trained_through <= %s
        order by trained_through, model_id
        """,
        (session,),
    )
    models = _dicts(cur)[-EQUITY_SESSIONS:]
    cur.execute(
        """
        select session_date, action, reason, model_id, champion_model_id, champion_changed,
               details ->> 'promotion_code' as promotion_code,
               (details -> 'selection' -> 'champion' ->> 'rank_ic')::double precision
                   as champion_window_rank_ic,
               (details -> 'selection' -> 'challenger' ->> 'rank_ic')::double precision
                   as challenger_window_rank_ic
        from ops.retrain_decisions where session_date <= %s
        order by session_date desc limit 10
        """,
        (session,),
    )
    return models, _dicts(cur)


def _dq(cur: Any, run_id: str) -> list[dict[str, Any]]:
    cur.execute(
        """
        select suite, check_name, severity, success, observed_value, unexpected
        from ops.dq_results where run_id = %s
        order by success, severity, suite, check_name
        """,
        (run_id,),
    )
    return _dicts(cur)


def _kill_events(cur: Any) -> list[dict[str, Any]]:
    cur.execute(
        """
        select at, kind, from_state, to_state, mode, reason_code, reason, actor
        from ops.kill_switch_events order by event_id desc limit 5
        """
    )
    return _dicts(cur)


def _market(cur: Any, session: date) -> dict[str, Any]:
    cur.execute(
        """
        select count(*), count(distinct symbol), min(close), max(close), sum(volume)
        from raw.bars where date = %s
        """,
        (session,),
    )
    rows, symbols, min_close, max_close, volume = cur.fetchone()
    cur.execute("select count(distinct date) from raw.bars where date <= %s", (session,))
    history = cur.fetchone()[0]
    return {
        "bars on the session": rows,
        "symbols on the session": symbols,
        "lowest close (USD)": float(min_close) if min_close is not None else None,
        "highest close (USD)": float(max_close) if max_close is not None else None,
        "shares traded": int(volume or 0),
        "sessions of history": history,
    }


def load_run_data(conn: Any, *, dag_id: str, run_id: str, session: date) -> RunData:
    """Read everything a run report shows for ``dag_id``'s run ``run_id`` of ``session``.

    The execution record and the orders are the run's own (by run id), never
    another run's of the same session.
    """
    own = ledger.run_execution(conn, dag_id, run_id)
    account, source = own, "this run"
    if own is None:
        account = ledger.latest_execution(conn, dag_id, session)
        source = "the latest account this DAG traded up to the session" if account else "none"
    equity = [] if account is None else ledger.account_equity(
        conn, account["broker"], account["account"], up_to=session, limit=EQUITY_SESSIONS,
        run_id=run_id,
    )
    orders = ledger.run_orders(conn, dag_id, run_id)
    events = [] if account is None else ledger.corporate_events(
        conn, account["broker"], account["account"],
        start=equity[0][0] if equity else session, end=session,
    )
    with conn, conn.cursor() as cur:
        models, decisions = _models(cur, session)
        return RunData(
            session=session,
            execution=own,
            account=account,
            account_source=source,
            equity=equity,
            weights=_weights(cur, session),
            diagnostics=_diagnostics(cur, session),
            models=models,
            decisions=decisions,
            orders=orders,
            dq=_dq(cur, run_id),
            kill_events=_kill_events(cur),
            market=_market(cur, session),
            corporate_events=events,
        )


def drawdown(equity: Sequence[float]) -> list[float]:
    """Drawdown from the running peak, fractions (0 at a new high, negative below it)."""
    out, peak = [], float("-inf")
    for value in equity:
        peak = max(peak, value)
        out.append(value / peak - 1.0 if peak > 0 else 0.0)
    return out


def as_utc_text(value: datetime | None) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM:SS UTC`` (empty for None)."""
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else ""
