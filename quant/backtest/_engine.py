"""The walk-forward backtest: the daily DAG's stage functions, session by session, in one process.

For each session D of the range, in order, exactly what a ``daily_trading`` run
of D calls (without Airflow):

0. ``quant.quality.run_data_quality``, the data-quality gate: a blocking
   failure stops the backtest at that session (``BacktestError`` naming the
   session and the checks), unless ``continue_on_quality_failure`` records it
   and goes on (it runs on the sessions the range's screen flags:
   :mod:`quant.backtest._gate`);
1. ``quant.model.retrain_model`` (when its schedule, drift or the lack of a
   champion says so) and ``quant.model.predict``;
2. ``quant.portfolio.optimize_portfolio`` (the strategy's method);
3. ``quant.execution.generate_orders`` (which first lets the simulator fill
   the earlier sessions' orders at D's auction), ``pretrade_check`` (the risk
   engine in process), ``submit_orders`` and ``reconcile``, as a backfill run on
   a simulator account of the backtest's own.

Before the loop the bars are ingested (``quant.data.ingest_bars``) and the dbt
models built once as of the last session: the marts are point in time, so a
session's rows are the same whichever later session they were built as of.
The marts the sessions read are then loaded into memory once
(:class:`quant.db.RelationCache`); the stages' loaders answer from it with the
frames they would have read from PostgreSQL. The stages' connections are
reused from one stage to the next: the stages' run context holds both
(:func:`quant.backtest._session.backtest_runs`).
The models of the calendar's retrains are fitted ahead in a process of their
own (:mod:`quant.backtest._trainer`): ``retrain_model`` registers them instead
of fitting them again, the same models since the fit is deterministic.

The baselines go through the same order, check, fill and reconcile path on
accounts of their own: ``top_k`` through ``solve_portfolio(optimizer="top_k")``
(the optimisation of ``optimize_portfolio`` without its writes) on the same
scores with its own current book, ``equal_weight`` with weights 1 / N over D's
tradable universe. Only the backtested strategy writes ``ops.target_weights``
and ``ops.portfolio_diagnostics``, as a backfill of the DAG would.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd

from quant import ledger
from quant.backtest._baselines import Baselines
from quant.backtest._costs import CostModel, TradeFill, accounting_costs, net_equity
from quant.backtest._gate import QualityGate
from quant.backtest._result import (
    CORPORATE_EVENT_COLUMNS,
    MAIN,
    RETRAIN_COLUMNS,
    BacktestResult,
    StrategyResult,
    retrain_row,
)
from quant.backtest._session import (
    BACKTEST_DAG_ID,
    BASELINES,
    Book,
    Clock,
    backtest_runs,
    execute,
    relation_cache,
)
from quant.backtest._trainer import Trainer
from quant.config import PORTFOLIO_METHODS, PROVIDER_NAMES, Settings, get_settings
from quant.exceptions import BacktestError, ConfigurationError, QuantError
from quant.pipeline import RunContext

__all__ = ["BACKTEST_DAG_ID", "ProgressCallback", "backtest_id", "run_backtest"]

ProgressCallback = Callable[[int, int, str], None]
"""``progress(done, total, description)``: steps done of the total, and what runs now."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def backtest_id(
    start: date, end: date, settings: Settings, optimizer: str, costs: CostModel
) -> str:
    """A short stable id of a backtest's configuration: same inputs, same id (and accounts)."""
    parts = {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "optimizer": optimizer,
        "provider": settings.provider,
        "costs": [costs.slippage_bps, costs.commission_per_share_usd],
        "sections": {
            name: getattr(settings, name).model_dump(mode="json")
            for name in ("synthetic", "model", "portfolio", "execution", "risk")
        },
        "history_sessions": settings.history_sessions,
        "exchange": settings.exchange,
    }
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _with_provider(settings: Settings, provider: str | None) -> Settings:
    if provider is None:
        return settings
    names = [n.strip().lower() for n in provider.split(",")]
    unknown = [n for n in names if n not in PROVIDER_NAMES]
    if not names or unknown or len(set(names)) != len(names):
        raise ConfigurationError(
            f"provider {provider!r}: expected a name or a comma-separated chain of "
            f"{', '.join(PROVIDER_NAMES)} (each at most once)"
        )
    return settings.model_copy(update={"provider": ",".join(names)})


def _read_weights(conn: Any, day: date) -> dict[str, float]:
    with conn.cursor() as cur:
        cur.execute(
            "select symbol, weight from ops.target_weights where session_date = %s order by symbol",
            (day,),
        )
        return {r[0]: float(r[1]) for r in cur.fetchall()}


def _orders_frame(conn: Any, book: Book, sessions: list[date]) -> pd.DataFrame:
    rows = ledger.account_orders(conn, BACKTEST_DAG_ID, book.account, sessions[0], sessions[-1])
    frame = pd.DataFrame(rows, columns=["session", "symbol", "side", "qty_shares", "status",
                                        "ref_price_usd"])
    frame["qty_shares"] = frame["qty_shares"].astype(float)
    return frame


def _fills_frame(book: Book, sessions: list[date], settings: Settings) -> pd.DataFrame:
    from quant.calendar import get_calendar

    cal = get_calendar(settings.exchange)
    auction = settings.execution.fill_auction
    at = {(cal.open_at(s) if auction == "open" else cal.close_at(s)): s for s in sessions}
    rows = []
    for f in book.broker.fills_since(_EPOCH):
        day = at.get(f.filled_at)
        if day is None:
            continue  # filled outside the range (an earlier backtest of the same account)
        rows.append((day, f.symbol, f.side, float(f.qty_shares), float(f.price_usd),
                     float(f.commission_usd)))
    return pd.DataFrame(
        rows, columns=["session", "symbol", "side", "qty_shares", "price_usd", "commission_usd"]
    )


def _impact_inputs(
    conn: Any, sessions: list[date], settings: Settings, n: int
) -> tuple[dict[tuple[date, str], float], dict[tuple[date, str], float]]:
    """Daily volatility and ADV (shares) per (session, symbol) over the ``n`` sessions up to it."""
    from psycopg2 import sql

    schema, table = settings.portfolio.returns_relation.split(".", 1)
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "with days as (select distinct session_date from {rel} where session_date <= %s "
                "order by session_date desc limit %s) "
                "select r.session_date, r.symbol, r.total_return, r.volume_shares from {rel} r "
                "join days d using (session_date)"
            ).format(rel=sql.Identifier(schema, table)),
            (sessions[-1], len(sessions) + n),
        )
        rows = cur.fetchall()
    frame = pd.DataFrame(rows, columns=["session", "symbol", "ret", "volume"])
    if frame.empty:
        return {}, {}
    ret = frame.pivot(index="session", columns="symbol", values="ret").sort_index().astype(float)
    vol = frame.pivot(index="session", columns="symbol", values="volume").sort_index().astype(float)
    sigma = ret.rolling(n, min_periods=2).std().stack()
    adv = vol.rolling(n, min_periods=1).mean().stack()
    keep = set(sessions)
    return (
        {k: float(v) for k, v in sigma.items() if k[0] in keep},
        {k: float(v) for k, v in adv.items() if k[0] in keep},
    )


def _ic_frame(conn: Any, sessions: list[date], settings: Settings) -> pd.DataFrame:
    """Daily IC and rank IC of D's scores (ops.predictions) against the returns the book earns.

    Orders on D's scores fill at the next session's open, so the return of
    horizon h runs from that open to the open h sessions later
    (``open_return_{h}d`` of marts.labels, built as of the last session):
    ``ic``, ``rank_ic`` for h = 1 and ``ic_{h}d``, ``rank_ic_{h}d`` for the
    longer horizons of :data:`quant.model.IC_HORIZONS`.
    """
    from quant.model import IC_HORIZONS, load_open_returns, tradeable_daily_metrics

    with conn.cursor() as cur:
        cur.execute(
            "select session_date, symbol, score from ops.predictions "
            "where session_date between %s and %s",
            (sessions[0], sessions[-1]),
        )
        scores = pd.DataFrame(cur.fetchall(), columns=["session_date", "symbol", "score"])
    returns = load_open_returns(
        conn, sessions[0], sessions[-1], sessions[-1], schema=settings.model.marts_schema
    )
    columns = {}
    for h in IC_HORIZONS:
        daily = tradeable_daily_metrics(scores, returns, h)
        suffix = "" if h == 1 else f"_{h}d"
        columns[f"ic{suffix}"] = daily["ic"]
        columns[f"rank_ic{suffix}"] = daily["rank_ic"]
    frame = pd.DataFrame(columns)
    frame = frame.dropna(how="all")
    frame.index = pd.to_datetime(frame.index).date
    return frame.rename_axis("session").reset_index()


def _strategy_result(
    conn: Any, book: Book, sessions: list[date], settings: Settings, costs: CostModel,
    impact: tuple[dict, dict] | None,
) -> StrategyResult:
    gross = pd.Series(book.equity, dtype=float).reindex(sessions)
    fills = _fills_frame(book, sessions, settings)
    previous = dict(zip(sessions[1:], sessions[:-1], strict=True))
    trade_fills = [
        TradeFill(session=r.session, order_session=previous.get(r.session, r.session),
                  symbol=r.symbol, side=r.side, qty_shares=r.qty_shares, price_usd=r.price_usd)
        for r in fills.itertuples(index=False)
    ]
    vol_map, adv_map = impact if impact is not None else ({}, {})
    charged = accounting_costs(trade_fills, costs, daily_vol=vol_map, adv_shares=adv_map)
    equity = net_equity(gross, charged)
    weights = pd.DataFrame(book.weights, columns=["session", "symbol", "weight"])
    return StrategyResult(
        name=book.name,
        account=book.account,
        gross_equity=gross,
        equity=equity,
        costs_usd=charged.reindex(sessions, fill_value=0.0),
        weights=weights,
        orders=_orders_frame(conn, book, sessions),
        fills=fills,
        positions=book.positions_frame(),
        corporate_events=pd.DataFrame(
            ledger.corporate_events(conn, "sim", book.account, start=sessions[0],
                                    end=sessions[-1]),
            columns=list(CORPORATE_EVENT_COLUMNS),
        ),
    )


def _loop(
    sessions: list[date],
    bid: str,
    method: str,
    base: RunContext,
    book: Book,
    conn: Any,
    clock: Clock,
    retrains: list[tuple],
    report: ProgressCallback,
    baselines: Baselines | None,
    gate: QualityGate,
) -> None:
    """Each session's data-quality gate, model stages and the strategy's; D goes to the
    baselines once scored."""
    from quant.model import predict, retrain_model
    from quant.portfolio import optimize_portfolio

    total = len(sessions) + 1
    for i, day in enumerate(sessions):
        run_id = f"backtest__{bid}__{day.isoformat()}"
        run = base.but(session=day, run_id=run_id)
        gate.check(run, clock)
        decision = clock.run("retrain_model", day, retrain_model, run)
        retrains.append(retrain_row(day, decision))
        clock.run("predict", day, predict, run)
        if baselines is not None:
            baselines.send(day, run_id)
        run = run.but(run_id=f"{run_id}__{MAIN}")
        summary = clock.run("optimize_portfolio", day, optimize_portfolio, run, optimizer=method)
        book.warnings.update(summary.get("warnings", ()))
        weights = _read_weights(conn, day)
        conn.commit()
        book.previous_weights = {s: w for s, w in weights.items() if w != 0.0}
        book.weights += [(day, s, w) for s, w in weights.items()]
        # the strategy reads ops.target_weights, as the DAG's generate_orders does
        execute(book, run, clock, None)
        report(i + 2, total, f"session {day}")


def run_backtest(
    start: date | str,
    end: date | str,
    *,
    settings: Settings | None = None,
    optimizer: str | None = None,
    provider: str | None = None,
    n_trials: int = 1,
    costs: CostModel | None = None,
    progress: ProgressCallback | None = None,
    baselines: bool | None = None,
    prepare: bool = True,
    continue_on_quality_failure: bool = False,
) -> BacktestResult:
    """Run the daily stage functions over every session from ``start`` to ``end``.

    Parameters
    ----------
    start, end : date or ISO str
        First and last day of the range (non-sessions are skipped).
    settings : Settings, optional
        Default :func:`quant.config.get_settings`. The backtest always fills with
        the simulator (as a backfill), whatever ``QUANT_BROKER`` and
        ``QUANT_TRADING_MODE`` say.
    optimizer : str, optional
        Portfolio method of the strategy; default ``settings.portfolio.optimizer``.
    provider : str, optional
        Market-data provider (chain) instead of ``QUANT_PROVIDER``.
    n_trials : int
        Configurations tried before this one (the deflated Sharpe ratio's N).
    costs : CostModel, optional
        Default :meth:`CostModel.from_settings`; its simulator costs replace the
        settings' ``execution.sim_*`` ones.
    progress : callable, optional
        ``progress(done, total, description)`` after the preparation and after
        each session.
    baselines : bool, optional
        Run the ``equal_weight`` and ``top_k`` baselines; default
        ``settings.backtest.baselines``.
    prepare : bool
        Ingest the bars and build the dbt models first (default); False when
        the caller has done it for the range already.
    continue_on_quality_failure : bool
        Each session first runs the DAG's data-quality gate
        (:func:`quant.quality.run_data_quality`); a blocking failure stops the
        backtest at that session, as it stops the DAG's run (default). True records
        the failures (:attr:`BacktestResult.quality_failures`) and trades the
        session anyway.

    Returns
    -------
    BacktestResult

    Raises
    ------
    BacktestError
        No session in the range, or a stage failed for a session (the message
        names both), or a session's data-quality gate failed (the message names
        the session and the failed checks).
    ConfigurationError
        Unknown optimizer or provider.
    """
    from quant.calendar import get_calendar
    from quant.db import connect, migrate

    started = time.perf_counter()
    settings = _with_provider(settings or get_settings(), provider)
    costs = costs or CostModel.from_settings(settings)
    settings = costs.apply_to(settings).model_copy(update={"broker": "sim", "trading_mode": "paper"})
    method = optimizer or settings.portfolio.optimizer
    if method not in PORTFOLIO_METHODS:
        raise ConfigurationError(
            f"unknown optimizer {method!r}; known: {', '.join(PORTFOLIO_METHODS)}"
        )
    if n_trials < 1:
        raise ConfigurationError(f"n_trials must be >= 1, got {n_trials}")
    run_baselines = settings.backtest.baselines if baselines is None else baselines
    first = date.fromisoformat(start) if isinstance(start, str) else start
    last = date.fromisoformat(end) if isinstance(end, str) else end
    if last < first:
        raise BacktestError(f"the range ends ({last}) before it starts ({first})")
    cal = get_calendar(settings.exchange)
    sessions = list(cal.sessions(first, last))
    if not sessions:
        raise BacktestError(f"no {settings.exchange} session between {first} and {last}")
    latest = cal.latest_closed_session()
    if sessions[-1] > latest:
        raise BacktestError(
            f"the range ends after the latest closed session {latest}: a backtest needs "
            "every session's close"
        )
    bid = backtest_id(sessions[0], sessions[-1], settings, method, costs)
    total = len(sessions) + 1
    report = progress or (lambda done, total, what: None)
    clock = Clock()

    migrate(settings)
    if prepare:
        from quant.data import ingest_bars
        from quant.transform import dbt_vars, run_dbt

        report(0, total, "ingest and dbt build")
        try:
            history_start = cal.shift(sessions[0], -(settings.history_sessions - 1))
        except QuantError:
            history_start = cal.first_session
        clock.run("ingest_bars", sessions[-1], ingest_bars, sessions[-1],
                  start=history_start, settings=settings)
        clock.run("dbt_build", sessions[-1], run_dbt, ["build"], settings=settings,
                  vars=dbt_vars(sessions[-1], settings))
    report(1, total, "sessions")

    names = [MAIN, *BASELINES] if run_baselines else [MAIN]
    book = Book(MAIN, bid, settings, sessions[-1])
    books = {MAIN: book}
    conn = connect(settings)
    retrains: list[tuple] = []
    gate = QualityGate(stop=not continue_on_quality_failure)
    trainer = Trainer(settings, sessions)
    baselines = Baselines(bid, settings, sessions) if run_baselines else None
    try:
        cache = clock.run("cache_marts", sessions[0], relation_cache, conn, sessions, settings)
        conn.commit()
        gate.screen_range(sessions, settings, clock)
        with backtest_runs(settings, cache, sessions[0], models=trainer) as base:
            _loop(sessions, bid, method, base, book, conn, clock, retrains, report, baselines,
                  gate)
        if baselines is not None:
            states, seconds = baselines.finish()
            for stage, spent in seconds.items():
                clock.seconds[stage] = clock.seconds.get(stage, 0.0) + spent
            for name in BASELINES:
                books[name] = Book(name, bid, settings, sessions[-1])
                books[name].restore(states[name])
        impact = None
        if costs.impact_coefficient > 0:
            impact = _impact_inputs(conn, sessions, settings, costs.impact_sessions)
        strategies = {
            name: _strategy_result(conn, books[name], sessions, settings, costs, impact)
            for name in names
        }
        ic = _ic_frame(conn, sessions, settings)
        conn.commit()
    finally:
        trainer.stop()
        if baselines is not None:
            baselines.stop()
        conn.close()
        for opened in books.values():
            opened.close()
    return BacktestResult(
        backtest_id=bid,
        sessions=sessions,
        optimizer=method,
        provider=settings.provider,
        n_trials=n_trials,
        costs=costs,
        periods_per_year=settings.backtest.periods_per_year,
        strategies=strategies,
        ic=ic,
        warnings={name: sorted(b.warnings) for name, b in books.items() if b.warnings},
        retrains=pd.DataFrame(retrains, columns=list(RETRAIN_COLUMNS)),
        quality_failures=gate.frame(),
        quality_warnings=gate.warning_counts(),
        gated_sessions=len(gate.gated),
        stage_seconds=clock.seconds,
        seconds=time.perf_counter() - started,
    )


