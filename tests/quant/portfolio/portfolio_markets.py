"""Small, honest markets for the portfolio tests: factor-model returns, scores, sectors."""

from __future__ import annotations

import numpy as np
import pandas as pd


def market(
    n: int,
    *,
    sessions: int = 120,
    seed: int = 0,
    n_sectors: int = 4,
    vol_range: tuple[float, float] = (0.01, 0.03),
    start: str = "2024-01-02",
) -> tuple[pd.Series, pd.DataFrame, pd.Series]:
    """Scores, daily returns (sessions x n, one market factor plus noise) and sectors of n names."""
    rng = np.random.default_rng(seed)
    symbols = [f"S{i:03d}" for i in range(n)]
    factor = rng.normal(0.0, 0.01, sessions)
    betas = rng.uniform(0.5, 1.5, n)
    idio = rng.uniform(*vol_range, n)
    values = np.outer(factor, betas) + rng.normal(size=(sessions, n)) * idio
    index = pd.bdate_range(start, periods=sessions)
    returns = pd.DataFrame(values, index=index, columns=symbols)
    scores = pd.Series(rng.normal(size=n), index=symbols)
    sectors = pd.Series([f"sector{i % n_sectors}" for i in range(n)], index=symbols)
    return scores, returns, sectors


def random_book(symbols: list[str], seed: int, gross: float, long_only: bool) -> pd.Series:
    """A current book: random weights over half the names with the given gross exposure."""
    rng = np.random.default_rng(seed + 1)
    held = rng.choice(len(symbols), size=max(1, len(symbols) // 2), replace=False)
    w = np.zeros(len(symbols))
    w[held] = rng.uniform(0.2, 1.0, len(held))
    if not long_only:
        w[held[::2]] *= -1
    w *= gross / np.abs(w).sum()
    return pd.Series(w, index=symbols)
