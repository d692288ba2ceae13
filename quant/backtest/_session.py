"""What the backtest's processes share: the books, the stage clock and one session's order path.

This module is the backtest's wiring: the strategy's process
(:mod:`quant.backtest._engine`) and the baselines'
(:mod:`quant.backtest._baselines`) run their sessions on the run contexts of
:func:`backtest_runs` (the marts of a :func:`relation_cache` in memory,
connections handed from stage to stage, models fitted ahead by the trainer's
process, :mod:`quant.backtest._trainer`); the strategy's and the baselines'
books go through :func:`execute` (generate, check, submit and reconcile
orders, as a backfill run of :data:`BACKTEST_DAG_ID`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import date
from typing import TYPE_CHECKING, Any

import pandas as pd
from threadpoolctl import threadpool_limits

from quant.backtest._book_stats import POSITION_COLUMNS
from quant.config import Settings
from quant.db import RelationCache, reused_connections
from quant.exceptions import BacktestError, QuantError
from quant.pipeline import PretrainedSource, RunContext

if TYPE_CHECKING:
    from quant.execution import SimBroker

__all__ = [
    "BACKTEST_DAG_ID",
    "BASELINES",
    "EQUAL_WEIGHT",
    "TOP_K",
    "Book",
    "Clock",
    "backtest_runs",
    "baseline_session",
    "equal_weights",
    "execute",
    "one_blas_thread",
    "relation_cache",
]

BACKTEST_DAG_ID = "backtest"
"""The ``dag_id`` the backtest's execution runs are recorded under (``ops.execution_runs``)."""

EQUAL_WEIGHT = "equal_weight"
TOP_K = "top_k"
BASELINES = (EQUAL_WEIGHT, TOP_K)


class Clock:
    """Wall time per stage, summed."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def run(self, stage: str, day: date, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        except QuantError as exc:
            raise BacktestError(f"{stage} failed for session {day}: {exc}") from exc
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - started


class Book:
    """One strategy's simulator account and what the backtest records of it."""

    def __init__(self, name: str, bid: str, settings: Settings, last: date) -> None:
        from quant.db import connect
        from quant.execution import SimBroker, choose_broker

        self.name = name
        self.backfill_id = f"backtest-{bid}-{name}"
        choice = choose_broker(
            settings, session=last, run_type="backfill", backfill_id=self.backfill_id
        )
        self.account = choice.account
        ex = settings.execution
        conn = connect(settings)
        self.broker: SimBroker = SimBroker(
            conn,
            account=self.account,
            initial_cash_usd=ex.sim_initial_cash_usd,
            slippage_bps=ex.sim_slippage_bps,
            commission_per_share_usd=ex.sim_commission_per_share_usd,
            max_participation=ex.sim_max_participation,
        )
        self.equity: dict[date, float] = {}
        self.weights: list[tuple[date, str, float]] = []
        self.previous_weights: dict[str, float] = {}
        self.run_ids: dict[date, str] = {}
        self.warnings: set[str] = set()
        """The portfolio stage's warnings over the sessions (e.g. top_k holding every name)."""
        self.positions: list[tuple[date, str, float, float]] = []
        """(session, symbol, shares, close) held after each session's auction."""

    def state(self) -> tuple:
        """What the backtest records of the book, to hand to another process (:meth:`restore`)."""
        return self.equity, self.weights, self.run_ids, self.warnings, self.positions

    def restore(self, state: tuple) -> None:
        """Take over what another process recorded (:meth:`state`)."""
        self.equity, self.weights, self.run_ids, self.warnings, self.positions = state

    def positions_frame(self) -> pd.DataFrame:
        """:attr:`positions` as :attr:`StrategyResult.positions`."""
        return pd.DataFrame(self.positions, columns=list(POSITION_COLUMNS))

    def close(self) -> None:
        self.broker.close()


def equal_weights(
    conn: Any, day: date, settings: Settings, cache: RelationCache | None = None
) -> dict[str, float]:
    """Weights 1 / N of the gross (leverage less the cash buffer) over D's tradable names."""
    from quant.portfolio import load_universe

    universe = load_universe(conn, day, settings.portfolio.universe_relation, cache=cache)
    names = sorted(universe.index[universe["is_tradable"].fillna(False).astype(bool)])
    if not names:
        raise BacktestError(f"no tradable name at {day} in {settings.portfolio.universe_relation}")
    p = settings.portfolio
    gross = p.max_leverage * (1.0 - p.cash_buffer)
    return dict.fromkeys(names, gross / len(names))


def execute(
    book: Book, run: RunContext, clock: Clock, weights: dict[str, float] | None
) -> None:
    """One book's orders for the run's session as a backfill run: generate, check, submit,
    reconcile.

    ``weights``: the book's targets; None for the strategy's (``ops.target_weights``).
    """
    from quant.execution import generate_orders, pretrade_check, reconcile, submit_orders

    day = run.session
    run = run.but(broker=book.broker, backfill_id=book.backfill_id, targets=weights)
    generated = clock.run("generate_orders", day, generate_orders, run)
    clock.run("pretrade_check", day, pretrade_check, run)
    clock.run("submit_orders", day, submit_orders, run)
    clock.run("reconcile", day, reconcile, run)
    book.equity[day] = float(generated["equity_usd"])
    # the simulator marked them at D's close when generate_orders settled D's auction
    book.positions += [(day, p.symbol, float(p.qty_shares), float(p.market_price_usd))
                       for p in book.broker.positions() if p.qty_shares != 0]
    book.run_ids[day] = str(run.run_id)


def baseline_session(books: dict[str, Book], run: RunContext, conn: Any, clock: Clock) -> None:
    """The session's equal-weight and top_k books: weights, then orders, checks, fills and
    reconcile (each book's run id is the run's with its name appended)."""
    from quant.portfolio import solve_portfolio

    day, settings = run.session, run.settings
    for name, book in books.items():
        if name == EQUAL_WEIGHT:
            weights = equal_weights(conn, day, settings, run.relations)
        else:
            # solve_portfolio writes nothing: ops.target_weights is the strategy's
            solved = clock.run("optimize_portfolio", day, solve_portfolio, conn, day,
                               settings=settings, optimizer=TOP_K,
                               current_weights=book.previous_weights, relations=run.relations)
            weights = solved.target_weights()
            book.warnings.update(solved.result.warnings)
            book.previous_weights = {s: w for s, w in weights.items() if w != 0.0}
        conn.commit()
        book.weights += [(day, s, w) for s, w in weights.items()]
        execute(book, run.but(run_id=f"{run.run_id}__{name}"), clock, weights)


def one_blas_thread() -> Any:
    """A block in which BLAS uses one thread.

    A session's matrices are small (names x names): one BLAS thread beats
    several fighting over two cores with LightGBM's and the other process's.
    """
    return threadpool_limits(limits=1, user_api="blas")


@contextlib.contextmanager
def backtest_runs(
    settings: Settings,
    cache: RelationCache,
    first: date,
    *,
    models: PretrainedSource | None = None,
) -> Iterator[RunContext]:
    """The run context every session of a backtest process starts from (``run.but(session=D,
    run_id=...)`` for session D): backfill runs of :data:`BACKTEST_DAG_ID` that read the marts
    from ``cache``, hand connections from one stage to the next, and register the models
    ``models`` gives instead of fitting them. Connections end, and BLAS gets its threads back,
    with the block.
    """
    with reused_connections() as pool, one_blas_thread():
        yield RunContext(
            session=first,
            run_id=None,
            settings=settings,
            dag_id=BACKTEST_DAG_ID,
            run_type="backfill",
            relations=cache,
            connections=pool,
            models=models,
        )


def relation_cache(
    conn: Any, sessions: list[date], settings: Settings, *, model: bool = True
) -> RelationCache:
    """The marts every session of the range reads, loaded once (see :mod:`quant.db._cache`).

    ``model``: with the model stages' marts (the baselines' process does without).
    """
    from quant.calendar import get_calendar

    cal = get_calendar(settings.exchange)
    p = settings.portfolio
    ic_span = p.ic_window_sessions + settings.model.horizon_sessions + 1  # the realised IC
    margin = max(p.lookback_sessions, settings.backtest.impact_sessions, ic_span) + 5
    try:
        returns_start = cal.shift(sessions[0], -margin)
    except QuantError:
        returns_start = cal.first_session
    from quant.execution import cache_market_inputs
    from quant.model import cache_model_inputs

    cache = RelationCache()
    if model:
        cache_model_inputs(conn, cache, sessions[0], sessions[-1], settings)
    cache.load(conn, p.returns_relation, returns_start, sessions[-1], columns=["total_return"])
    cache.load(conn, p.universe_relation, sessions[0], sessions[-1],
               columns=["sector", "is_tradable"])
    cache_market_inputs(conn, cache, sessions[0], sessions[-1], settings.providers,
                        settings.execution.adv_sessions)
    return cache
