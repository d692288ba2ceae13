"""The optimize_portfolio stage on the real embedded PostgreSQL.

The returns and universe relations are small tables in a test schema (the stage
reads them through ``portfolio.returns_relation`` / ``universe_relation``), so
these tests do not depend on a dbt build; scores go into the real ops.predictions.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import numpy as np
import pandas as pd
import pytest
from portfolio_markets import market

from quant.calendar import get_calendar
from quant.config import Settings
from quant.db import connect
from quant.exceptions import PortfolioError
from quant.execution import Position
from quant.pipeline import run_context
from quant.portfolio import optimize_portfolio, weights_from_positions
from quant.testing.db import execute, query

SCHEMA = "portfolio_stage_test"
N_NAMES = 30


def _sessions(settings: Settings, n: int) -> list[date]:
    cal = get_calendar(settings.exchange)
    days = cal.sessions(date(2024, 1, 2), date(2024, 12, 31))
    return days[:n]


def _load_market(settings: Settings, returns: pd.DataFrame, sectors: pd.Series) -> None:
    from psycopg2.extras import execute_values

    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(f"drop schema if exists {SCHEMA} cascade")
            cur.execute(f"create schema {SCHEMA}")
            cur.execute(
                f"create table {SCHEMA}.returns "
                "(symbol text, session_date date, total_return double precision)"
            )
            cur.execute(
                f"create table {SCHEMA}.universe "
                "(symbol text, session_date date, sector text, is_tradable boolean)"
            )
            long = returns.stack().reset_index()
            execute_values(
                cur,
                f"insert into {SCHEMA}.returns (session_date, symbol, total_return) values %s",
                [(d.date(), s, float(r)) for d, s, r in long.itertuples(index=False)],
            )
            execute_values(
                cur,
                f"insert into {SCHEMA}.universe values %s",
                [(s, d.date(), sectors[s], True) for d in returns.index for s in returns.columns],
            )
    finally:
        conn.close()


def _predict(settings: Settings, day: date, scores: pd.Series) -> None:
    from psycopg2.extras import execute_values

    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("select model_id from ops.models limit 1")
            row = cur.fetchone()
            if row is None:
                cur.execute(
                    """
                    insert into ops.models (trained_through, horizon_sessions, objective, target,
                        params, num_boost_round, features, feature_hash, metrics, train_rows,
                        train_sessions, artifact_path, artifact_checksum)
                    values ('2024-01-02', 5, 'regression', 'fwd_5', '{}', 10, '{f}', 'h', '{}',
                        1, 1, 'm.txt', 'c')
                    returning model_id
                    """
                )
                row = cur.fetchone()
            cur.execute("delete from ops.predictions where session_date = %s", (day,))
            execute_values(
                cur,
                "insert into ops.predictions (session_date, symbol, score, model_id) values %s",
                [(day, s, float(v), row[0]) for s, v in scores.items()],
            )
    finally:
        conn.close()


@pytest.fixture()
def stage(clean_db: Settings) -> Iterator[tuple[Settings, pd.Series, pd.DataFrame, list[date]]]:
    """Settings reading the test schema, 130 sessions of returns, scores at the last two."""
    days = _sessions(clean_db, 130)
    scores, returns, sectors = market(N_NAMES, sessions=len(days), seed=21)
    returns.index = pd.DatetimeIndex(days)
    _load_market(clean_db, returns, sectors)
    portfolio = clean_db.portfolio.model_copy(
        update={
            "returns_relation": f"{SCHEMA}.returns",
            "universe_relation": f"{SCHEMA}.universe",
            "lookback_sessions": 100,
            "min_history_sessions": 60,
        }
    )
    settings = clean_db.model_copy(update={"portfolio": portfolio})
    _predict(settings, days[-2], scores)
    _predict(settings, days[-1], -scores)
    yield settings, scores, returns, days
    execute(clean_db, f"drop schema if exists {SCHEMA} cascade")


def _weights(settings: Settings, day: date) -> pd.DataFrame:
    rows = query(
        settings,
        "select run_id, symbol, weight, method from ops.target_weights "
        "where session_date = %s order by symbol",
        day,
    )
    return pd.DataFrame(rows, columns=["run_id", "symbol", "weight", "method"])


def test_optimize_portfolio_when_run_then_weights_and_diagnostics_written(stage) -> None:
    settings, _, _, days = stage
    summary = optimize_portfolio(run_context(days[-2], settings=settings, run_id="run-1"))

    weights = _weights(settings, days[-2])
    assert summary["rows_written"] == len(weights) > 0
    assert (weights["run_id"] == "run-1").all()
    assert set(weights["method"]) == {"mean_variance"}
    assert weights["weight"].max() <= settings.portfolio.max_weight + 1e-9
    assert weights["weight"].min() >= 0.0
    diag = query(
        settings,
        "select method, stage, fallback_used, ex_ante_vol, turnover, n_names, attempts "
        "from ops.portfolio_diagnostics where session_date = %s",
        days[-2],
    )
    assert len(diag) == 1
    method, stage_name, fallback, vol, moved, n_names, attempts = diag[0]
    assert (method, stage_name, fallback) == ("mean_variance", "primary", False)
    assert vol == pytest.approx(settings.portfolio.vol_target, rel=1e-4)
    assert moved == pytest.approx(weights["weight"].abs().sum())  # first run: from cash
    assert n_names == int((weights["weight"] != 0).sum())
    assert attempts[0]["stage"] == "primary" and attempts[0]["ok"] is True


def test_optimize_portfolio_when_rerun_then_rows_replaced_without_duplicates(stage) -> None:
    settings, _, _, days = stage
    optimize_portfolio(run_context(days[-2], settings=settings, run_id="run-1"))
    first = _weights(settings, days[-2])

    optimize_portfolio(run_context(days[-2], settings=settings, run_id="run-1"))
    again = _weights(settings, days[-2])
    pd.testing.assert_frame_equal(first, again)

    optimize_portfolio(run_context(days[-2], settings=settings, run_id="run-2"))
    other = _weights(settings, days[-2])
    assert (other["run_id"] == "run-2").all()
    pd.testing.assert_frame_equal(first.drop(columns="run_id"), other.drop(columns="run_id"))
    assert query(
        settings,
        "select count(*) from ops.portfolio_diagnostics where session_date = %s",
        days[-2],
    ) == [(1,)]


def test_optimize_portfolio_when_returns_after_session_change_then_same_weights(stage) -> None:
    settings, _, _, days = stage
    optimize_portfolio(run_context(days[-2], settings=settings, run_id="r"))
    before = _weights(settings, days[-2])
    execute(
        settings,
        f"update {SCHEMA}.returns set total_return = total_return * 25 where session_date > %s",
        days[-2],
    )
    optimize_portfolio(run_context(days[-2], settings=settings, run_id="r"))
    pd.testing.assert_frame_equal(before, _weights(settings, days[-2]))


def test_optimize_portfolio_when_previous_session_weights_then_turnover_capped_against_them(
    stage,
) -> None:
    settings, _, _, days = stage
    optimize_portfolio(run_context(days[-2], settings=settings, run_id="d1"))
    previous = _weights(settings, days[-2]).set_index("symbol")["weight"]
    capped = settings.model_copy(
        update={"portfolio": settings.portfolio.model_copy(update={"turnover_cap": 0.1})}
    )

    summary = optimize_portfolio(run_context(days[-1], settings=capped, run_id="d2"))

    now = _weights(settings, days[-1]).set_index("symbol")["weight"]
    names = now.index.union(previous.index)
    moved = (now.reindex(names).fillna(0) - previous.reindex(names).fillna(0)).abs().sum()
    assert moved <= 0.1 + 1e-6
    assert summary["turnover"] == pytest.approx(moved, abs=1e-9)
    assert moved > 0.0  # reversed scores: the book does move, as far as the cap lets it
    # names sold down to zero are stored explicitly
    assert set(previous[previous > 0].index) <= set(now.index)


def test_optimize_portfolio_when_current_weights_given_then_used_instead_of_table(stage) -> None:
    settings, scores, _, days = stage
    capped = settings.model_copy(
        update={"portfolio": settings.portfolio.model_copy(update={"turnover_cap": 0.05})}
    )
    held = {scores.index[0]: 0.05, scores.index[1]: 0.05}
    summary = optimize_portfolio(
        run_context(days[-1], settings=capped, run_id="x"),
        current_weights=held,
    )
    now = _weights(settings, days[-1]).set_index("symbol")["weight"]
    moved = (now - pd.Series(held).reindex(now.index).fillna(0)).abs().sum()
    assert moved <= 0.05 + 1e-6
    assert summary["turnover"] == pytest.approx(moved, abs=1e-9)


def test_optimize_portfolio_when_constraints_infeasible_then_fallback_recorded_and_rows_written(
    stage,
) -> None:
    settings, scores, _, days = stage
    summary = optimize_portfolio(
        run_context(days[-2], settings=settings, run_id="f"),
        symbols=list(scores.index[:5]),
    )
    assert summary["n_candidates"] == 5
    assert summary["fallback_used"] is True
    row = query(
        settings,
        "select method, method_used, stage, fallback_used, attempts "
        "from ops.portfolio_diagnostics where session_date = %s",
        days[-2],
    )[0]
    assert row[:4] == ("mean_variance", "hrp", "hrp", True)
    assert row[4][0]["ok"] is False and "infeasible" in row[4][0]["reason"]
    weights = _weights(settings, days[-2])
    assert set(weights["method"]) == {"hrp"}
    assert weights["weight"].max() <= 0.10 + 1e-9


@pytest.mark.parametrize("method", ["hrp", "risk_parity", "cvar", "top_k", "min_volatility"])
def test_optimize_portfolio_when_optimizer_given_then_that_method_recorded(stage, method) -> None:
    settings, _, _, days = stage
    summary = optimize_portfolio(
        run_context(days[-2], settings=settings, run_id="m"),
        optimizer=method,
    )
    assert summary["method"] == method
    assert set(_weights(settings, days[-2])["method"]) == {summary["method_used"]}


def test_optimize_portfolio_when_name_not_tradable_then_never_weighted(stage) -> None:
    settings, scores, _, days = stage
    best = scores.sort_values().index[-1]
    execute(
        settings,
        f"update {SCHEMA}.universe set is_tradable = false where symbol = %s",
        best,
    )
    summary = optimize_portfolio(run_context(days[-2], settings=settings, run_id="t"))
    assert summary["n_candidates"] == N_NAMES - 1
    assert best not in set(_weights(settings, days[-2])["symbol"])


def test_optimize_portfolio_when_no_predictions_then_raises(stage) -> None:
    settings, _, _, days = stage
    with pytest.raises(PortfolioError, match="no predictions"):
        optimize_portfolio(run_context(days[-3], settings=settings))


def test_weights_from_positions_when_long_and_short_then_signed_fractions_of_equity() -> None:
    positions = [
        Position(symbol="AAA", qty_shares=10, avg_price_usd=90.0, market_price_usd=100.0),
        Position(symbol="BBB", qty_shares=-5, avg_price_usd=50.0, market_price_usd=40.0),
    ]
    weights = weights_from_positions(positions, equity_usd=10_000.0)
    assert weights == pytest.approx({"AAA": 0.1, "BBB": -0.02})
    with pytest.raises(PortfolioError):
        weights_from_positions(positions, equity_usd=0.0)


def test_stage_weights_when_read_like_execution_then_one_method_per_run(stage) -> None:
    settings, _, _, days = stage
    optimize_portfolio(run_context(days[-2], settings=settings, run_id="exec"))
    rows = query(
        settings,
        "select symbol, weight, method from ops.target_weights "
        "where run_id = %s and session_date = %s",
        "exec", days[-2],
    )
    assert rows and len({r[2] for r in rows}) == 1
    assert np.isfinite([r[1] for r in rows]).all()
