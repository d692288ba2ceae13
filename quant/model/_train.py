"""Deterministic LightGBM fits of the return model, validated walk-forward.

The training data and its folds come from :mod:`quant.model._training_set`;
their names are importable from here too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from quant.config import ModelSettings
from quant.model._drift import reference_distribution
from quant.model._metrics import daily_metrics, summarise_metrics
from quant.model._training_set import (
    KEY_COLUMNS,
    Fold,
    TrainingSet,
    feature_hash,
    label_columns,
    training_set,
    walk_forward_folds,
)

__all__ = [
    "KEY_COLUMNS",
    "Fold",
    "TrainedModel",
    "TrainingSet",
    "feature_hash",
    "label_columns",
    "lightgbm_params",
    "train_model",
    "training_set",
    "walk_forward_folds",
]

_RELEVANCE_LEVELS = 5
"""Relevance grades of the LambdaRank label (forward-return quintiles)."""


def lightgbm_params(settings: ModelSettings) -> dict[str, Any]:
    """LightGBM parameters of a fit: fixed seed and threads, deterministic, column-wise."""
    params: dict[str, Any] = {
        "objective": settings.objective,
        "learning_rate": settings.learning_rate,
        "num_leaves": settings.num_leaves,
        "min_data_in_leaf": settings.min_data_in_leaf,
        "feature_fraction": settings.feature_fraction,
        "bagging_fraction": settings.bagging_fraction,
        "bagging_freq": 1 if settings.bagging_fraction < 1 else 0,
        "lambda_l2": settings.lambda_l2,
        "max_bin": settings.max_bin,
        "bin_construct_sample_cnt": settings.bin_sample_rows,
        "num_threads": settings.num_threads,
        "seed": settings.seed,
        "deterministic": True,
        "force_col_wise": True,
        "verbosity": -1,
    }
    if settings.objective == "lambdarank":
        params["metric"] = "ndcg"
        params["eval_at"] = [20]
    else:
        params["metric"] = "l2"
    return params


def _relevance(frame: pd.DataFrame) -> np.ndarray:
    pct = frame.groupby("session_date", sort=False)["forward_return"].rank(pct=True, method="first")
    return np.minimum((pct * _RELEVANCE_LEVELS).to_numpy().astype(int), _RELEVANCE_LEVELS - 1)


def _dataset(
    frame: pd.DataFrame,
    features: Sequence[str],
    params: dict[str, Any],
    reference=None,
    *,
    rows: np.ndarray | None = None,
    x: np.ndarray | None = None,
):
    """LightGBM dataset of ``frame``'s rows (``rows``, a boolean mask, or all).

    ``x`` is ``frame``'s feature matrix when the caller built it already
    (shape (len(frame), len(features)), float64).
    """
    import lightgbm as lgb

    if x is None:
        x = frame[list(features)].to_numpy(dtype=np.float64)
    if rows is not None:
        x = x[rows]
    if params["objective"] == "lambdarank":
        part = frame if rows is None else frame[rows]
        label = _relevance(part)
        group = part.groupby("session_date", sort=True).size().to_numpy()
    else:
        label = frame["target"].to_numpy(dtype=np.float64)
        if rows is not None:
            label = label[rows]
        group = None
    return lgb.Dataset(
        x,
        label=label,
        group=group,
        feature_name=list(features),
        params={
            "max_bin": params["max_bin"],
            "bin_construct_sample_cnt": params["bin_construct_sample_cnt"],
            "verbosity": -1,
            "data_random_seed": params["seed"],
        },
        reference=reference,
        free_raw_data=True,
    )


@dataclass(frozen=True)
class TrainedModel:
    """A fitted model with its validation record, ready to register.

    ``model_text`` is LightGBM's text format; ``checksum`` its SHA-256. The
    same training set and settings give the same text byte for byte.
    """

    model_text: str
    checksum: str
    features: tuple[str, ...]
    params: dict[str, Any]
    num_boost_round: int
    as_of: date
    horizon_sessions: int
    metrics: dict[str, Any]
    reference: dict[str, Any]
    train_rows: int
    train_sessions: int
    target: str = "rank"
    dropped_features: tuple[str, ...] = field(default_factory=tuple)
    recent_scores: pd.DataFrame | None = field(default=None, compare=False, repr=False)
    """Out-of-sample scores of the last validation fold: ``session_date`` (date),
    ``symbol``, ``score``; what the model's recipe scored on sessions it was
    not fitted on, for the champion/challenger comparison."""

    @property
    def feature_hash(self) -> str:
        return feature_hash(self.features)

    @property
    def rank_ic(self) -> float | None:
        """Out-of-sample rank IC over all validation folds."""
        return self.metrics["validation"]["rank_ic"]


def train_model(
    features: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    as_of: date,
    settings: ModelSettings,
) -> TrainedModel:
    """Train the return model on what was known at the close of ``as_of``.

    Walk-forward folds (see :func:`walk_forward_folds`) each fit with early
    stopping on their validation block and give out-of-sample scores; the
    final model is fit on every training row with the median best number
    of rounds of the folds.

    Parameters
    ----------
    features, labels : DataFrame
        See :func:`training_set`; rows after ``as_of`` are never read.
    as_of : datetime.date
        The logical date D.
    settings : ModelSettings
        Label, LightGBM parameters and validation layout.

    Returns
    -------
    TrainedModel
        ``metrics["validation"]`` summarises all folds' out-of-sample
        scores, ``metrics["folds"]`` each fold (see
        :func:`quant.model.summarise_metrics`).

    Raises
    ------
    TrainingDataError
        Too little data is known at ``as_of``.
    """
    import lightgbm as lgb

    data = training_set(features, labels, as_of=as_of, settings=settings)
    folds = walk_forward_folds(data, settings)
    params = lightgbm_params(settings)
    frame = data.frame
    fold_records: list[dict[str, Any]] = []
    oos_dates: list[np.ndarray] = []
    oos_scores: list[np.ndarray] = []
    oos_returns: list[np.ndarray] = []
    best_rounds: list[int] = []
    x = frame[list(data.features)].to_numpy(dtype=np.float64)
    dates_all = frame["session_date"].to_numpy()
    returns_all = frame["forward_return"].to_numpy(dtype=float)
    symbols_all = frame["symbol"].to_numpy()
    for fold in folds:
        dtrain = _dataset(frame, data.features, params, rows=fold.train, x=x)
        dvalid = _dataset(frame, data.features, params, reference=dtrain, rows=fold.valid, x=x)
        booster = lgb.train(
            params,
            dtrain,
            num_boost_round=settings.num_boost_round,
            valid_sets=[dvalid],
            valid_names=["validation"],
            callbacks=[lgb.early_stopping(settings.early_stopping_rounds, verbose=False)],
        )
        best = int(booster.best_iteration or settings.num_boost_round)
        best_rounds.append(best)
        scores = booster.predict(x[fold.valid], num_iteration=best)
        dates = dates_all[fold.valid]
        returns = returns_all[fold.valid]
        oos_dates.append(dates)
        oos_scores.append(scores)
        oos_returns.append(returns)
        fold_daily = daily_metrics(dates, scores, returns)
        record = summarise_metrics(fold_daily)
        record.update(
            fold=fold.number,
            train_start=fold.train_start.isoformat(),
            train_end=fold.train_end.isoformat(),
            valid_start=fold.valid_start.isoformat(),
            valid_end=fold.valid_end.isoformat(),
            train_rows=int(fold.train.sum()),
            valid_rows=int(fold.valid.sum()),
            best_iteration=best,
        )
        fold_records.append(record)
        last_fold = (dates, symbols_all[fold.valid], scores)

    if len(folds) == 1:
        overall = summarise_metrics(fold_daily)  # the one fold's rows are all the rows
    else:
        overall = summarise_metrics(
            daily_metrics(
                np.concatenate(oos_dates), np.concatenate(oos_scores), np.concatenate(oos_returns)
            )
        )
    rounds = max(1, int(round(float(np.median(best_rounds)))))
    final = lgb.train(params, _dataset(frame, data.features, params, x=x), num_boost_round=rounds)
    text = final.model_to_string()
    checksum = hashlib.sha256(text.encode()).hexdigest()
    sessions = data.sessions
    metrics = {
        "validation": overall,
        "folds": fold_records,
        "train_start": pd.Timestamp(sessions[0]).date().isoformat(),
        "train_end": pd.Timestamp(sessions[-1]).date().isoformat(),
    }
    return TrainedModel(
        model_text=text,
        checksum=checksum,
        features=data.features,
        params=params,
        num_boost_round=rounds,
        as_of=as_of,
        horizon_sessions=data.horizon_sessions,
        metrics=json.loads(json.dumps(metrics)),
        reference=reference_distribution(
            frame,
            data.features,
            settings.drift_bins,
            window_sessions=(
                settings.drift_window_sessions
                if settings.drift_calibration == "training_windows"
                else None
            ),
        ),
        train_rows=int(len(frame)),
        train_sessions=int(sessions.size),
        target=settings.target,
        dropped_features=data.dropped_features,
        recent_scores=pd.DataFrame(
            {
                "session_date": pd.to_datetime(last_fold[0]).date,
                "symbol": last_fold[1].astype(str),
                "score": last_fold[2],
            }
        ),
    )
