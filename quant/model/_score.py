"""Scores of one session's cross-section from a model's text artifact."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Scores", "score_cross_section"]


@dataclass(frozen=True)
class Scores:
    """Scores of the names that could be scored and the names that could not.

    ``scores`` has columns ``symbol`` and ``score`` (higher = higher expected
    forward return), sorted by symbol. ``skipped`` maps each name left out
    to why: ``no_feature_row`` or ``missing_features``.
    """

    scores: pd.DataFrame
    skipped: dict[str, str]


def score_cross_section(
    model_text: str | Any,
    features: Sequence[str],
    frame: pd.DataFrame,
    symbols: Sequence[str] | None = None,
) -> Scores:
    """Score every name of ``symbols`` from its row in ``frame``.

    A name without a row, or with a null in any of the model's ``features``,
    is skipped and reported; no value is filled.

    Parameters
    ----------
    model_text : str or lightgbm.Booster
        LightGBM model in text format, or the booster parsed from it.
    features : sequence of str
        The model's input columns, in training order.
    frame : DataFrame
        One row per symbol (a single session) with ``symbol`` and the
        feature columns.
    symbols : sequence of str, optional
        Names to score (the session's universe); default every row's symbol.
    """
    import lightgbm as lgb

    names = list(features)
    wanted = sorted(set(frame["symbol"]) if symbols is None else set(symbols))
    if _plain_frame(frame, names):
        return _score_plain(model_text, names, frame, wanted)
    rows = frame[frame["symbol"].isin(wanted)].drop_duplicates("symbol")
    missing_columns = [n for n in names if n not in rows.columns]
    skipped: dict[str, str] = {}
    present = set(rows["symbol"])
    for name in wanted:
        if name not in present:
            skipped[name] = "no_feature_row"
    if missing_columns:
        for name in sorted(present):
            skipped[name] = "missing_features"
        rows = rows.iloc[0:0]
    else:
        complete = rows[names].notna().all(axis=1)
        for name in sorted(rows.loc[~complete, "symbol"]):
            skipped[name] = "missing_features"
        rows = rows.loc[complete]
    rows = rows.sort_values("symbol", kind="stable")
    if rows.empty:
        scores = np.empty(0)
    else:
        booster = (
            lgb.Booster(model_str=model_text) if isinstance(model_text, str) else model_text
        )
        scores = booster.predict(rows[names].to_numpy(dtype=np.float64))
    out = pd.DataFrame({"symbol": rows["symbol"].astype(str).to_numpy(), "score": scores})
    return Scores(scores=out, skipped=dict(sorted(skipped.items())))


def _plain_frame(frame: pd.DataFrame, names: list[str]) -> bool:
    """Text symbols and int or float inputs: :func:`_score_plain` gives the general path's result."""
    dtypes = frame.dtypes.to_dict()
    if not pd.api.types.is_string_dtype(dtypes["symbol"]) or not frame.columns.is_unique:
        return False
    for name in names:
        dtype = dtypes.get(name)
        if not isinstance(dtype, np.dtype) or dtype.kind not in "iuf":
            return False
    return bool(frame["symbol"].notna().all())


def _score_plain(model: str | Any, names: list[str], frame: pd.DataFrame, wanted: list) -> Scores:
    """:func:`score_cross_section` on arrays: the first row of each wanted name, by name."""
    import lightgbm as lgb

    chosen = set(wanted)
    first: dict[str, int] = {}
    for i, symbol in enumerate(frame["symbol"].to_numpy(dtype=object)):
        if symbol in chosen and symbol not in first:
            first[symbol] = i
    skipped = {name: "no_feature_row" for name in wanted if name not in first}
    order = sorted(first)
    at = np.fromiter((first[s] for s in order), dtype=np.intp, count=len(order))
    x = frame[names].to_numpy(dtype=np.float64)[at] if names else np.empty((at.size, 0))
    complete = ~np.isnan(x).any(axis=1)
    for i in np.flatnonzero(~complete):
        skipped[order[i]] = "missing_features"
    kept = [order[i] for i in np.flatnonzero(complete)]
    if kept:
        booster = lgb.Booster(model_str=model) if isinstance(model, str) else model
        scores = booster.predict(x[complete])
    else:
        scores = np.empty(0)
    out = pd.DataFrame({"symbol": np.array(kept, dtype=object), "score": scores})
    return Scores(scores=out, skipped=dict(sorted(skipped.items())))
