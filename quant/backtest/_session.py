"""What the backtest's processes share: the books, the stage clock and one session's order path.

The strategy's process (:mod:`quant.backtest._engine`), the baselines'
(:mod:`quant.backtest._baselines`) and the trainer's
(:mod:`quant.backtest._trainer`) all run their sessions in
:func:`session_context` on a :func:`relation_cache`; the strategy's and the
baselines' books go through :func:`execute` (generate, check, submit and
reconcile orders, as a backfill run of :data:`BACKTEST_DAG_ID`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from threadpoolctl import threadpool_limits

from quant.config import Settings
from quant.db import RelationCache, cached_relations, reused_connections
from quant.exceptions import BacktestError, QuantError

if TYPE_CHECKING:
    from quant.execution import SimBroker

__all__ = [
    "BACKTEST_DAG_ID",
    "BASELINES",
    "EQUAL_WEIGHT",
    "TOP_K",
    "Book",
    "Clock",
    "baseline_session",
    "equal_weights",
    "execute",
    "relation_cache",
    "session_context",
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

    def close(self) -> None:
        self.broker.close()


def equal_weights(conn: Any, day: date, settings: Settings) -> dict[str, float]:
    """Weights 1 / N of the gross (leverage less the cash buffer) over D's tradable names."""
    from quant.portfolio import load_universe

    universe = load_universe(conn, day, settings.portfolio.universe_relation)
    names = sorted(universe.index[universe["is_tradable"].fillna(False).astype(bool)])
    if not names:
        raise BacktestError(f"no tradable name at {day} in {settings.portfolio.universe_relation}")
    p = settings.portfolio
    gross = p.max_leverage * (1.0 - p.cash_buffer)
    return dict.fromkeys(names, gross / len(names))


def execute(
    book: Book,
    day: date,
    run_id: str,
    settings: Settings,
    clock: Clock,
    weights: dict[str, float] | None,
) -> None:
    """One book's orders for D as a backfill run: generate, check, submit, reconcile.

    ``weights``: the book's targets; None for the strategy's (``ops.target_weights``).
    """
    from quant.execution import generate_orders, pretrade_check, reconcile, submit_orders

    common = {
        "run_id": run_id,
        "settings": settings,
        "broker": book.broker,
        "dag_id": BACKTEST_DAG_ID,
    }
    generated = clock.run(
        "generate_orders",
        day,
        generate_orders,
        day,
        run_type="backfill",
        backfill_id=book.backfill_id,
        latest_session=day,
        weights=weights,
        **common,
    )
    clock.run("pretrade_check", day, pretrade_check, day, **common)
    clock.run("submit_orders", day, submit_orders, day, **common)
    clock.run("reconcile", day, reconcile, day, **common)
    book.equity[day] = float(generated["equity_usd"])
    book.run_ids[day] = run_id


def baseline_session(
    books: dict[str, Book], day: date, run_id: str, conn: Any, settings: Settings, clock: Clock
) -> None:
    """D's equal-weight and top_k books: weights, then orders, checks, fills and reconcile."""
    from quant.portfolio import solve_portfolio

    for name, book in books.items():
        if name == EQUAL_WEIGHT:
            weights = equal_weights(conn, day, settings)
        else:
            # solve_portfolio writes nothing: ops.target_weights is the strategy's
            solved = clock.run("optimize_portfolio", day, solve_portfolio, conn, day,
                               settings=settings, optimizer=TOP_K,
                               current_weights=book.previous_weights)
            weights = solved.target_weights()
            book.warnings.update(solved.result.warnings)
            book.previous_weights = {s: w for s, w in weights.items() if w != 0.0}
        conn.commit()
        book.weights += [(day, s, w) for s, w in weights.items()]
        execute(book, day, f"{run_id}__{name}", settings, clock, weights)


def session_context(cache: RelationCache) -> contextlib.ExitStack:
    """What the session loops run in: reused connections, the marts in memory, one BLAS thread.

    A session's matrices are small (names x names): one BLAS thread beats
    several fighting over two cores with LightGBM's and the other process's.
    """
    stack = contextlib.ExitStack()
    stack.enter_context(reused_connections())
    stack.enter_context(cached_relations(cache))
    stack.enter_context(threadpool_limits(limits=1, user_api="blas"))
    return stack


def relation_cache(
    conn: Any, sessions: list[date], settings: Settings, *, model: bool = True
) -> RelationCache:
    """The marts every session of the range reads, loaded once (see :mod:`quant.db._cache`).

    ``model``: with the model stages' marts (the baselines' process does without).
    """
    from quant.calendar import get_calendar

    cal = get_calendar(settings.exchange)
    p = settings.portfolio
    margin = max(p.lookback_sessions, settings.backtest.impact_sessions) + 5
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
