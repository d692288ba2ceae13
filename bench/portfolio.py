"""Portfolio construction benchmark: time per method for 100 and 500 assets.

Prints one JSON object:

* ``assets``: the universe sizes timed (100 and 500 unless given on the command line);
* ``sessions``: trailing sessions of returns (252) behind the covariance;
* ``results[n][method]``: ``median_s`` and ``max_s`` over ``repeats`` runs of
  :meth:`quant.portfolio.PortfolioOptimizer.optimize` (covariance estimate, method,
  repair and verification: what one daily run costs), plus ``stage`` (whether the
  method's own weights were kept) and ``n_names``;
* ``goal_s`` (2.0) and ``meets_goal``: every method under the goal at 500 assets.

The market is a seeded factor model (one market factor, eight sectors) and the
default settings apply (long-only, 10% per name, 25% per sector, 10% volatility
target). A warm-up run per size is not counted (imports, solver set-up).

python bench/portfolio.py [N ...]
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import numpy as np
import pandas as pd

from quant.config import PORTFOLIO_METHODS, PortfolioSettings
from quant.portfolio import PortfolioOptimizer

SESSIONS = 252
REPEATS = 3
GOAL_S = 2.0


def _market(n: int, seed: int = 42) -> tuple[pd.Series, pd.DataFrame, pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    symbols = [f"S{i:04d}" for i in range(n)]
    factor = rng.normal(0.0, 0.01, SESSIONS)
    values = np.outer(factor, rng.uniform(0.5, 1.5, n))
    values += rng.normal(size=(SESSIONS, n)) * rng.uniform(0.01, 0.03, n)
    returns = pd.DataFrame(
        values, index=pd.bdate_range("2024-01-02", periods=SESSIONS), columns=symbols
    )
    scores = pd.Series(rng.normal(size=n), index=symbols)
    sectors = pd.Series([f"sector{i % 8}" for i in range(n)], index=symbols)
    held = rng.choice(n, size=min(40, n), replace=False)
    current = pd.Series(0.0, index=symbols)
    current.iloc[held] = 0.9 / len(held)
    return scores, returns, sectors, current


def run(sizes: list[int]) -> dict:
    optimizer = PortfolioOptimizer(PortfolioSettings())
    results: dict[str, dict] = {}
    for n in sizes:
        scores, returns, sectors, current = _market(n)
        optimizer.optimize(scores, returns, sectors=sectors, current_weights=current)
        results[str(n)] = {}
        for method in PORTFOLIO_METHODS:
            times = []
            result = None
            for _ in range(REPEATS):
                started = time.perf_counter()
                result = optimizer.optimize(
                    scores, returns, sectors=sectors, current_weights=current, method=method
                )
                times.append(time.perf_counter() - started)
            results[str(n)][method] = {
                "median_s": round(statistics.median(times), 4),
                "max_s": round(max(times), 4),
                "stage": result.stage,
                "n_names": result.n_names,
            }
    largest = str(max(sizes))
    return {
        "assets": sizes,
        "sessions": SESSIONS,
        "repeats": REPEATS,
        "results": results,
        "goal_s": GOAL_S,
        "meets_goal": all(r["median_s"] < GOAL_S for r in results[largest].values()),
    }


if __name__ == "__main__":
    sizes = [int(a) for a in sys.argv[1:]] or [100, 500]
    print(json.dumps(run(sizes)))
