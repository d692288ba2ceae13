"""optimize_portfolio on the real dbt models: synthetic bars ingested, dbt built, scores stored.

The stage reads its default relations, ``intermediate.int_prices_adjusted`` and
``marts.universe``, as the real dbt project builds them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import numpy as np
import pytest

from quant.calendar import get_calendar
from quant.config import Settings
from quant.pipeline import run_context
from quant.portfolio import optimize_portfolio
from quant.testing.db import execute, query
from quant.testing.marts import register_placeholder_model, reset_pipeline, returns_and_universe

pytestmark = pytest.mark.integration

SYMBOLS = 40
END = date(2016, 12, 30)
HISTORY_SESSIONS = 300


@pytest.fixture(scope="module")
def built(pg_settings: Settings) -> Iterator[tuple[Settings, list[date]]]:
    """Bars of 40 synthetic names ingested; the returns and universe models built as of END."""
    settings = returns_and_universe(SYMBOLS, END, HISTORY_SESSIONS)
    cal = get_calendar(settings.exchange)
    yield settings, [cal.shift(END, -1), END]
    reset_pipeline(settings)


def _store_scores(settings: Settings, day: date, seed: int) -> int:
    """Random scores for D's tradable names in ops.predictions; returns how many."""
    tradable = [
        r[0]
        for r in query(
            settings,
            "select symbol from marts.universe where session_date = %s and is_tradable",
            day,
        )
    ]
    rng = np.random.default_rng(seed)
    model = query(settings, "select model_id from ops.models limit 1")
    model_id = model[0][0] if model else register_placeholder_model(settings, day)
    execute(settings, "delete from ops.predictions where session_date = %s", day)
    for symbol in tradable:
        execute(
            settings,
            "insert into ops.predictions (session_date, symbol, score, model_id) "
            "values (%s, %s, %s, %s)",
            day, symbol, float(rng.normal()), model_id,
        )
    return len(tradable)


def test_optimize_portfolio_when_dbt_models_built_then_weights_within_limits(built) -> None:
    settings, (previous, end) = built
    assert _store_scores(settings, previous, 1) >= 20
    n_scored = _store_scores(settings, end, 2)

    optimize_portfolio(run_context(previous, settings=settings, run_id="dbt-1"))
    summary = optimize_portfolio(run_context(end, settings=settings, run_id="dbt-2"))

    assert summary["n_candidates"] == n_scored
    assert summary["stage"] == "primary"
    rows = query(
        settings,
        "select t.symbol, t.weight, u.sector from ops.target_weights t "
        "join marts.universe u on u.symbol = t.symbol and u.session_date = t.session_date "
        "where t.session_date = %s",
        end,
    )
    weights = np.array([r[1] for r in rows])
    limits = settings.portfolio
    assert weights.min() >= 0.0
    assert weights.max() <= limits.max_weight + 1e-6
    assert weights.sum() <= limits.max_leverage * (1 - limits.cash_buffer) + 1e-6
    by_sector: dict[str, float] = {}
    for _, w, sector in rows:
        by_sector[sector] = by_sector.get(sector, 0.0) + w
    assert max(by_sector.values()) <= limits.max_sector_weight + 1e-6
    assert summary["ex_ante_vol"] <= limits.vol_target * (1 + 1e-4)
    previous_weights = dict(
        query(
            settings,
            "select symbol, weight from ops.target_weights where session_date = %s",
            previous,
        )
    )
    now = {r[0]: r[1] for r in rows}
    names = set(now) | set(previous_weights)
    moved = sum(abs(now.get(s, 0.0) - previous_weights.get(s, 0.0)) for s in names)
    assert summary["turnover"] == pytest.approx(moved, abs=1e-9)
