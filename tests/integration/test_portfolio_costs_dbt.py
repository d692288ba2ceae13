"""Costs in optimize_portfolio on the real dbt models: a model without skill does not churn the book.

Synthetic bars ingested and the returns and universe models built by dbt; each
session gets random scores in ``ops.predictions`` (a model with no skill) and
the stage runs session after session, its current book the previous session's
targets, once with the cost term, the no-trade band and the realised-IC
conviction, and once without any of them (the optimiser as it was).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import numpy as np
import pytest

from quant.calendar import get_calendar
from quant.config import Settings
from quant.db import connect
from quant.pipeline import run_context
from quant.portfolio import optimize_portfolio
from quant.testing.db import execute, query
from quant.testing.marts import register_placeholder_model, reset_pipeline, returns_and_universe

pytestmark = pytest.mark.integration

SYMBOLS = 40
END = date(2016, 12, 30)
HISTORY_SESSIONS = 340
RUN_SESSIONS = 45


@pytest.fixture(scope="module")
def zero_skill(pg_settings: Settings) -> Iterator[tuple[Settings, list[date]]]:
    """The marts as of END and random scores for each of the last RUN_SESSIONS sessions."""
    settings = returns_and_universe(SYMBOLS, END, HISTORY_SESSIONS)
    cal = get_calendar(settings.exchange)
    sessions = [cal.shift(END, -k) for k in range(RUN_SESSIONS - 1, -1, -1)]
    model_id = register_placeholder_model(settings, sessions[0])
    rng = np.random.default_rng(17)
    rows = []
    for day in sessions:
        tradable = query(
            settings,
            "select symbol from marts.universe where session_date = %s and is_tradable "
            "order by symbol",
            day,
        )
        rows += [(day, s, float(rng.normal()), model_id) for (s,) in tradable]
    from psycopg2.extras import execute_values

    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            execute_values(
                cur,
                "insert into ops.predictions (session_date, symbol, score, model_id) values %s",
                rows,
            )
    finally:
        conn.close()
    yield settings, sessions
    reset_pipeline(settings)


def _run(settings: Settings, sessions: list[date], **portfolio) -> list[dict]:
    """The stage over the sessions from an empty book; its summaries, session by session."""
    execute(settings, "delete from ops.target_weights; delete from ops.portfolio_diagnostics")
    config = settings.model_copy(
        update={"portfolio": settings.portfolio.model_copy(update=portfolio)}
    )
    return [optimize_portfolio(run_context(day, settings=config, run_id=f"cost-{day}")) for day in sessions]


def test_optimize_portfolio_when_scores_have_no_skill_then_costs_cut_turnover_to_a_third(
    zero_skill,
) -> None:
    settings, sessions = zero_skill
    assert settings.portfolio.turnover_penalty > 0 and settings.portfolio.no_trade_band > 0

    cost_aware = _run(settings, sessions)
    stored = query(
        settings,
        "select session_date, turnover, expected_cost, ic_source, ic_used, conviction "
        "from ops.portfolio_diagnostics order by session_date",
    )
    blind = _run(
        settings, sessions, turnover_penalty=0.0, no_trade_band=0.0, ic_source="configured"
    )

    # the first session buys the book from cash either way: the churn is what follows
    churn_aware = sum(s["turnover"] for s in cost_aware[1:])
    churn_blind = sum(s["turnover"] for s in blind[1:])
    assert churn_blind > 0.5  # the test needs a book that churns without costs
    assert churn_aware <= churn_blind / 3.0
    assert all(s["stage"] == "primary" for s in cost_aware)

    # every session records its turnover and expected cost
    assert [r[0] for r in stored] == sessions
    for (_, moved, cost, *_), summary in zip(stored, cost_aware, strict=True):
        assert moved == pytest.approx(summary["turnover"], abs=1e-12)
        assert cost == pytest.approx(settings.portfolio.turnover_penalty * moved, abs=1e-12)
    # no realised IC for the first sessions: the fallback is recorded; later the realised IC
    sources = [r[3] for r in stored]
    assert sources[0] == "configured"
    assert "ic_min_sessions" in stored[0][5]["note"]
    assert sources[-1] == "realised"
    assert stored[-1][5]["sessions"] >= settings.portfolio.ic_min_sessions
    assert stored[-1][4] >= 0.0


def test_optimize_portfolio_when_top_k_not_below_universe_then_warning_stored(zero_skill) -> None:
    settings, sessions = zero_skill
    day = sessions[-1]
    (n_tradable,) = query(
        settings,
        "select count(*) from marts.universe where session_date = %s and is_tradable",
        day,
    )[0]
    execute(settings, "delete from ops.target_weights; delete from ops.portfolio_diagnostics")
    config = settings.model_copy(
        update={"portfolio": settings.portfolio.model_copy(update={"top_k": n_tradable})}
    )

    summary = optimize_portfolio(
        run_context(day, settings=config, run_id="top-k-all"),
        optimizer="top_k",
    )
    below = optimize_portfolio(
        run_context(
            day,
            settings=settings.model_copy(
            update={"portfolio": settings.portfolio.model_copy(update={"top_k": n_tradable - 1})}
        ),
            run_id="top-k-fewer",
        ),
        optimizer="top_k",
    )

    assert any("top_k" in w and "every" in w for w in summary["warnings"])
    assert below["warnings"] == []
    (stored,) = query(
        settings, "select warnings from ops.portfolio_diagnostics where session_date = %s", day
    )[0]
    assert stored == []  # the later run replaced the session's row
    summary = optimize_portfolio(
        run_context(day, settings=config, run_id="top-k-all"),
        optimizer="top_k",
    )
    (stored,) = query(
        settings, "select warnings from ops.portfolio_diagnostics where session_date = %s", day
    )[0]
    assert stored == summary["warnings"] and stored
