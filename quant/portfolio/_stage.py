"""The ``optimize_portfolio`` stage: D's scores in PostgreSQL to D's target weights.

Reads, point in time (nothing dated after D):

- ``ops.predictions`` at D (the model stage's scores);
- the universe relation (``marts.universe``) at D: sector and ``is_tradable``;
- the returns relation (``intermediate.int_prices_adjusted``): daily total returns
  over the ``lookback_sessions`` sessions up to D;
- current weights: the caller's (e.g. the broker's positions, see
  :func:`weights_from_positions`), else the latest ``ops.target_weights`` before D;
- the model's recent record, for the conviction (:mod:`quant.portfolio._conviction`):
  ``ops.predictions`` of the sessions before D whose outcome is known at D, the
  returns that followed them, and the scoring model's ``ops.models.validation_rank_ic``.

Writes ``ops.target_weights`` and ``ops.portfolio_diagnostics`` for D, replacing
D's previous rows in one transaction (reruns give the same rows, never duplicates).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from quant.calendar import get_calendar
from quant.config import Settings
from quant.exceptions import PortfolioError
from quant.portfolio._conviction import (
    Conviction,
    conviction_from_daily_ic,
    load_predictions,
    load_validation_ic,
    log_fallback,
    realised_rank_ic,
)
from quant.portfolio._optimizer import PortfolioOptimizer, PortfolioResult
from quant.portfolio._risk import RiskModel

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

    from quant.db import RelationCache
    from quant.pipeline import RunContext
    from quant.typing import Position

__all__ = [
    "load_current_weights",
    "load_returns",
    "load_scores",
    "load_universe",
    "optimize_portfolio",
    "weights_from_positions",
]


def _relation(name: str) -> Any:
    from psycopg2 import sql

    schema, table = name.split(".", 1)
    return sql.Identifier(schema, table)


def _exists(conn: PgConnection, name: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("select to_regclass(%s)", (name,))
        return cur.fetchone()[0] is not None


def load_scores(
    conn: PgConnection, session: date, symbols: Iterable[str] | None = None
) -> pd.Series:
    """D's model scores from ``ops.predictions``, indexed by symbol (optionally only ``symbols``)."""
    query = "select symbol, score from ops.predictions where session_date = %s"
    params: tuple[Any, ...] = (session,)
    if symbols is not None:
        query += " and symbol = any(%s)"
        params += (list(symbols),)
    with conn.cursor() as cur:
        cur.execute(query, params)
        rows = cur.fetchall()
    return pd.Series({s: float(v) for s, v in rows}, dtype=float).sort_index()


def load_universe(
    conn: PgConnection, session: date, relation: str, *, cache: RelationCache | None = None
) -> pd.DataFrame:
    """D's universe rows: index symbol, columns ``sector`` and ``is_tradable``.

    From ``cache`` (the run context's relations) when it holds D's rows.
    """
    from psycopg2 import sql

    cached = None if cache is None else cache.rows(relation, session, session)
    if cached is not None:
        frame = cached[["symbol", "sector", "is_tradable"]]
        frame = frame.astype(object).where(frame.notna(), None)
        frame = pd.DataFrame(
            list(frame.itertuples(index=False, name=None)),
            columns=["symbol", "sector", "is_tradable"],
        )
        return frame.set_index("symbol").sort_index()
    if not _exists(conn, relation):
        raise PortfolioError(f"{relation} does not exist: build the dbt models first")
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("select symbol, sector, is_tradable from {} where session_date = %s").format(
                _relation(relation)
            ),
            (session,),
        )
        rows = cur.fetchall()
    frame = pd.DataFrame(rows, columns=["symbol", "sector", "is_tradable"])
    return frame.set_index("symbol").sort_index()


def _cached_returns(
    session: date, names: list[str], sessions: int, relation: str, cache: RelationCache | None
) -> pd.DataFrame | None:
    """:func:`load_returns` from ``cache``; None when it cannot answer."""
    held = None if cache is None else cache.get(relation)
    if held is None or held.end < session:
        return None
    dates = held.session_dates()
    dates = dates[dates <= np.datetime64(session, "ns")]
    if len(dates) < sessions:
        return None  # rows before the cached range may be among the last n sessions
    first = pd.Timestamp(dates[-sessions]).date()
    frame = held.rows(first, session)
    frame = frame.loc[
        frame["symbol"].isin(names) & frame["total_return"].notna(),
        ["session_date", "symbol", "total_return"],
    ]
    if frame.empty:
        return pd.DataFrame(columns=names, dtype=float)
    wide = frame.pivot(index="session_date", columns="symbol", values="total_return")
    wide.index = wide.index.as_unit("ns")
    return wide.sort_index().reindex(columns=names).astype(float)


def load_returns(
    conn: PgConnection,
    session: date,
    symbols: Iterable[str],
    sessions: int,
    relation: str,
    *,
    cache: RelationCache | None = None,
) -> pd.DataFrame:
    """Daily total returns of ``symbols`` over the last ``sessions`` sessions up to D.

    From ``cache`` (the run context's relations) when it holds them.

    Returns
    -------
    DataFrame of shape (n_sessions, n_symbols)
        Indexed by session date (ascending), NaN where a name has no return.
    """
    from psycopg2 import sql

    if not _exists(conn, relation):
        raise PortfolioError(f"{relation} does not exist: build the dbt models first")
    names = sorted(set(symbols))
    cached = _cached_returns(session, names, sessions, relation, cache)
    if cached is not None:
        return cached
    query = sql.SQL(
        """
        with days as (
            select distinct session_date from {rel}
            where session_date <= %(d)s
            order by session_date desc
            limit %(n)s
        )
        select r.session_date, r.symbol, r.total_return
        from {rel} as r
        inner join days on days.session_date = r.session_date
        where r.symbol = any(%(names)s) and r.total_return is not null
        """
    ).format(rel=_relation(relation))
    with conn.cursor() as cur:
        cur.execute(query, {"d": session, "n": sessions, "names": names})
        rows = cur.fetchall()
    frame = pd.DataFrame(rows, columns=["session_date", "symbol", "total_return"])
    if frame.empty:
        return pd.DataFrame(columns=names, dtype=float)
    wide = frame.pivot(index="session_date", columns="symbol", values="total_return")
    wide.index = pd.to_datetime(wide.index).as_unit("ns")
    return wide.sort_index().reindex(columns=names).astype(float)


def load_current_weights(conn: PgConnection, session: date) -> pd.Series:
    """The latest ``ops.target_weights`` dated before D (empty before the first run)."""
    with conn.cursor() as cur:
        cur.execute(
            """
            select symbol, weight from ops.target_weights
            where session_date = (
                select max(session_date) from ops.target_weights where session_date < %s
            )
            """,
            (session,),
        )
        rows = cur.fetchall()
    return pd.Series({s: float(w) for s, w in rows}, dtype=float).sort_index()


def weights_from_positions(positions: Iterable[Position], equity_usd: float) -> dict[str, float]:
    """Current weights from broker positions: signed market value / equity, per symbol.

    Parameters
    ----------
    positions : iterable of quant.typing.Position
    equity_usd : float
        Account equity (cash + positions at market), USD; must be positive.
    """
    if equity_usd <= 0:
        raise PortfolioError(f"equity {equity_usd} USD: weights need a positive equity")
    weights: dict[str, float] = {}
    for p in positions:
        weights[p.symbol] = weights.get(p.symbol, 0.0) + p.market_value_usd / equity_usd
    return weights


@dataclass(frozen=True)
class SolvedPortfolio:
    """D's optimisation before anything is written: what :func:`optimize_portfolio` stores."""

    result: PortfolioResult
    scores: pd.Series
    """The tradable candidates' scores."""
    current: pd.Series
    """The book before the rebalance, fractions of equity."""

    def target_weights(self) -> dict[str, float]:
        """The rows ``ops.target_weights`` gets: non-zero weights and zeros for held names."""
        held = set(self.current[self.current != 0].index)
        return {
            str(symbol): float(weight)
            for symbol, weight in self.result.weights.items()
            if weight != 0.0 or symbol in held
        }


def solve_portfolio(
    conn: PgConnection,
    day: date,
    *,
    settings: Settings,
    optimizer: str | None = None,
    symbols: list[str] | None = None,
    current_weights: Mapping[str, float] | None = None,
    risk_model: RiskModel | None = None,
    relations: RelationCache | None = None,
) -> SolvedPortfolio:
    """D's scores, universe, book and returns in, the optimiser's result out; writes nothing.

    Arguments and errors as :func:`optimize_portfolio`; ``relations``: the marts held in
    memory (:attr:`quant.pipeline.RunContext.relations`).
    """
    config = settings.portfolio
    scores = load_scores(conn, day, symbols)
    if scores.empty:
        raise PortfolioError(f"no predictions at {day}: run predict first")
    universe = load_universe(conn, day, config.universe_relation, cache=relations)
    tradable = universe.index[universe["is_tradable"].fillna(False).astype(bool)]
    scores = scores[scores.index.isin(tradable)]
    if scores.empty:
        raise PortfolioError(
            f"no scored name is tradable at {day} in {config.universe_relation}"
        )
    if current_weights is not None:
        current = pd.Series(dict(current_weights), dtype=float)
    else:
        current = load_current_weights(conn, day)
    conviction, returns = _conviction(conn, day, settings, scores.index, relations)
    result = PortfolioOptimizer(config, risk_model).optimize(
        scores,
        returns,
        current_weights=current,
        sectors=universe["sector"],
        method=optimizer,
        as_of=day,
        conviction=conviction,
    )
    return SolvedPortfolio(result=result, scores=scores, current=current)


def _conviction(
    conn: PgConnection,
    day: date,
    settings: Settings,
    names: pd.Index,
    relations: RelationCache | None = None,
) -> tuple[Conviction, pd.DataFrame]:
    """D's conviction and the returns the optimiser reads (of D's names and of the scored
    names of the IC window, over the longer of the two look-backs)."""
    config = settings.portfolio
    if config.ic_source == "configured":
        returns = load_returns(conn, day, names, config.lookback_sessions, config.returns_relation,
                               cache=relations)
        return conviction_from_daily_ic(pd.Series(dtype=float), config, 1), returns
    horizon = settings.model.horizon_sessions
    span = config.ic_window_sessions + horizon + 1
    first = get_calendar(settings.exchange).shift(day, -span)
    predictions = load_predictions(conn, first, day)
    returns = load_returns(
        conn,
        day,
        names.union(pd.Index(predictions["symbol"].unique())),
        max(config.lookback_sessions, span),
        config.returns_relation,
        cache=relations,
    )
    daily = realised_rank_ic(predictions, returns, horizon, config.ic_window_sessions)
    validation = None
    if len(daily) < config.ic_min_sessions:
        validation = load_validation_ic(conn, day)
    conviction = conviction_from_daily_ic(daily, config, horizon, validation)
    log_fallback(day, conviction)
    return conviction, returns


def optimize_portfolio(
    run: RunContext,
    *,
    optimizer: str | None = None,
    symbols: list[str] | None = None,
    current_weights: Mapping[str, float] | None = None,
    risk_model: RiskModel | None = None,
) -> dict[str, Any]:
    """Build D's target weights from D's scores and write them with the run's diagnostics.

    Parameters
    ----------
    run : RunContext
        The run: its session is D; its run id is stored on every row (default
        ``manual__<D>``).
    optimizer : str, optional
        Method name; default ``settings.portfolio.optimizer``.
    symbols : list of str, optional
        Only these names are candidates.
    current_weights : mapping of str to float, optional
        The book before this rebalance, fractions of equity (e.g. from
        :func:`weights_from_positions` with the broker's positions). Default: the
        latest ``ops.target_weights`` before D.
    risk_model : RiskModel, optional
        Default: the one ``settings.portfolio.risk_model`` names.

    Returns
    -------
    dict
        JSON-serialisable: ``session``, ``run_id``, ``rows_written``,
        ``n_candidates``, ``seconds`` and the diagnostics of
        :meth:`PortfolioResult.diagnostics`.

    Raises
    ------
    PortfolioError
        No scores at D, the universe or returns relation is missing, or no
        scored name has enough return history.
    ConfigurationError
        ``optimizer`` is not a known method.
    """
    from psycopg2.extras import execute_values

    settings, day = run.settings, run.session
    get_calendar(settings.exchange).require_session(day)
    config = settings.portfolio
    run_id = run.run_id or f"manual__{day.isoformat()}"
    started = time.perf_counter()
    with run.transaction() as conn:
        solved = solve_portfolio(
            conn,
            day,
            settings=settings,
            optimizer=optimizer,
            symbols=symbols,
            current_weights=current_weights,
            risk_model=risk_model,
            relations=run.relations,
        )
        result, scores = solved.result, solved.scores
        rows = [
            (run_id, day, symbol, weight, result.method_used)
            for symbol, weight in solved.target_weights().items()
        ]
        diagnostics = result.diagnostics()
        with conn.cursor() as cur:
            cur.execute("delete from ops.target_weights where session_date = %s", (day,))
            cur.execute("delete from ops.portfolio_diagnostics where session_date = %s", (day,))
            if rows:
                execute_values(
                    cur,
                    "insert into ops.target_weights (run_id, session_date, symbol, weight, method) "
                    "values %s",
                    rows,
                )
            cur.execute(
                """
                insert into ops.portfolio_diagnostics (
                    session_date, run_id, method, method_used, stage, fallback_used,
                    limits_relaxed, ex_ante_vol, expected_return, turnover, n_names,
                    gross_exposure, net_exposure, vol_scale, n_candidates, excluded,
                    attempts, settings, expected_cost, band_held_back, ic_used, ic_source,
                    conviction, warnings
                ) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                          %s, %s, %s, %s, %s, %s)
                """,
                (
                    day,
                    run_id,
                    result.method,
                    result.method_used,
                    result.stage,
                    result.fallback_used,
                    list(result.limits_relaxed),
                    result.ex_ante_vol,
                    result.expected_return,
                    result.turnover,
                    result.n_names,
                    result.gross_exposure,
                    result.net_exposure,
                    result.vol_scale,
                    int(len(scores)),
                    list(result.excluded),
                    json.dumps(diagnostics["attempts"]),
                    config.model_dump_json(),
                    result.expected_cost,
                    result.band_held_back,
                    None if result.conviction is None else result.conviction.ic,
                    None if result.conviction is None else result.conviction.source,
                    None if result.conviction is None else json.dumps(diagnostics["conviction"]),
                    list(result.warnings),
                ),
            )
    return {
        "session": day.isoformat(),
        "run_id": run_id,
        "rows_written": len(rows),
        "n_candidates": int(len(scores)),
        "seconds": round(time.perf_counter() - started, 3),
        **diagnostics,
    }
