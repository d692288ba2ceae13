"""Point-in-time training sets and their purged walk-forward validation folds."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from quant.config import ModelSettings
from quant.exceptions import TrainingDataError

__all__ = [
    "KEY_COLUMNS",
    "Fold",
    "TrainingSet",
    "candidate_features",
    "feature_hash",
    "label_columns",
    "training_set",
    "walk_forward_folds",
]

KEY_COLUMNS: tuple[str, ...] = ("symbol", "session_date")
"""Columns that identify a row of the feature and label tables."""

_MIN_NAMES_PER_SESSION = 5
"""Sessions with fewer names than this cannot be ranked and are left out of training."""


def label_columns(horizon_sessions: int) -> tuple[str, str]:
    """Names of the forward-return and label-end-date columns of a horizon."""
    return f"forward_return_{horizon_sessions}d", f"label_end_date_{horizon_sessions}d"


def feature_hash(features: Sequence[str]) -> str:
    """SHA-256 of the ordered feature list (a model only scores inputs with this hash)."""
    return hashlib.sha256("\n".join(features).encode()).hexdigest()


def _as_timestamps(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values).astype("datetime64[ns]")


def _numeric_feature_columns(frame: pd.DataFrame) -> list[str]:
    names = []
    for name in frame.columns:
        if name in KEY_COLUMNS:
            continue
        dtype = frame[name].dtype
        if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
            continue
        names.append(str(name))
    return names


def candidate_features(frame: pd.DataFrame, settings: ModelSettings) -> list[str]:
    """The configured feature columns, or every numeric non-key column of ``frame``.

    Raises
    ------
    TrainingDataError
        A configured feature is not a column of ``frame``.
    """
    if settings.features:
        missing = [n for n in settings.features if n not in frame.columns]
        if missing:
            raise TrainingDataError(f"configured feature(s) {missing} are not in the feature table")
        return list(settings.features)
    names = _numeric_feature_columns(frame)
    if not names:
        raise TrainingDataError("the feature table has no numeric feature column")
    return names


@dataclass(frozen=True)
class TrainingSet:
    """Rows a model trained at ``as_of`` may learn from.

    ``frame`` holds ``symbol``, ``session_date`` (datetime64), the feature
    columns, ``forward_return`` (fraction over the horizon), ``label_end_date``
    and ``target`` (the per-session normalised forward return), sorted by
    session then symbol, with no null feature.
    """

    frame: pd.DataFrame
    features: tuple[str, ...]
    as_of: date
    horizon_sessions: int
    dropped_features: tuple[str, ...] = ()

    @property
    def sessions(self) -> np.ndarray:
        """Distinct training sessions, ascending (datetime64)."""
        return np.unique(self.frame["session_date"].to_numpy())


def _normalise_target(frame: pd.DataFrame, how: str) -> pd.Series:
    grouped = frame.groupby("session_date", sort=False)["forward_return"]
    if how == "rank":
        n = grouped.transform("count")
        return (grouped.rank(method="average") - 0.5) / n - 0.5
    mean = grouped.transform("mean")
    sd = grouped.transform("std")
    return ((frame["forward_return"] - mean) / sd.where(sd > 0)).clip(-3.0, 3.0)


def training_set(
    features: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    as_of: date,
    settings: ModelSettings,
) -> TrainingSet:
    """Join features and labels as known at the close of ``as_of``.

    Only feature rows dated ``as_of`` or earlier are read, and only labels
    whose horizon ended by ``as_of`` (``label_end_date <= as_of``): a label
    that was still unknown at the close is purged. The last
    ``train_window_sessions`` sessions are kept; a feature null in more than
    ``max_feature_null_share`` of those rows is left out, then rows with any
    null input are dropped (nothing is filled).

    Parameters
    ----------
    features : DataFrame
        One row per (``symbol``, ``session_date``) with numeric feature
        columns, as in ``marts.features``.
    labels : DataFrame
        One row per (``symbol``, ``session_date``) with
        ``forward_return_{h}d`` and ``label_end_date_{h}d``.
    as_of : datetime.date
        The logical date D.
    settings : ModelSettings
        Horizon, target, window and feature choices.

    Raises
    ------
    TrainingDataError
        Columns are missing or nothing is left to train on.
    """
    horizon = settings.horizon_sessions
    ret_col, end_col = label_columns(horizon)
    for name in (*KEY_COLUMNS, ret_col, end_col):
        if name not in labels.columns:
            available = sorted(c for c in labels.columns if c.startswith("forward_return_"))
            raise TrainingDataError(
                f"labels have no column {name!r} (horizon {horizon}); available: {available}"
            )
    for name in KEY_COLUMNS:
        if name not in features.columns:
            raise TrainingDataError(f"features have no column {name!r}")
    cutoff = pd.Timestamp(as_of)
    names = candidate_features(features, settings)

    feats = features[[*KEY_COLUMNS, *names]]  # a new frame (copy-on-write)
    feats["session_date"] = _as_timestamps(feats["session_date"])
    feats = feats[feats["session_date"] <= cutoff]

    labs = labels[[*KEY_COLUMNS, ret_col, end_col]]
    labs["session_date"] = _as_timestamps(labs["session_date"])
    labs[end_col] = _as_timestamps(labs[end_col])
    known = (
        (labs["session_date"] <= cutoff)
        & labs[end_col].notna()
        & (labs[end_col] <= cutoff)
        & np.isfinite(labs[ret_col].to_numpy(dtype=float))
    )
    labs = labs.loc[known].rename(columns={ret_col: "forward_return", end_col: "label_end_date"})

    frame = feats.merge(labs, on=list(KEY_COLUMNS), how="inner", validate="one_to_one")
    if frame.empty:
        raise TrainingDataError(f"no labelled feature row is known at {as_of}")
    sessions = np.unique(frame["session_date"].to_numpy())
    if sessions.size > settings.train_window_sessions:
        frame = frame[frame["session_date"] >= sessions[-settings.train_window_sessions]]

    null_share = frame[names].isna().mean()
    kept = [n for n in names if null_share[n] <= settings.max_feature_null_share]
    dropped = tuple(n for n in names if n not in kept)
    if not kept:
        raise TrainingDataError(
            f"every feature is null in more than {settings.max_feature_null_share:.0%} of the "
            f"training rows at {as_of}"
        )
    frame = frame.dropna(subset=kept)
    counts = frame.groupby("session_date")["symbol"].transform("count")
    frame = frame[counts >= _MIN_NAMES_PER_SESSION]
    if frame.empty:
        raise TrainingDataError(
            f"no session with {_MIN_NAMES_PER_SESSION}+ complete rows at {as_of}"
        )
    frame = frame.sort_values(["session_date", "symbol"], kind="stable").reset_index(drop=True)
    frame["target"] = _normalise_target(frame, settings.target)
    frame = frame[[*KEY_COLUMNS, *kept, "forward_return", "label_end_date", "target"]]
    return TrainingSet(
        frame=frame,
        features=tuple(kept),
        as_of=as_of,
        horizon_sessions=horizon,
        dropped_features=dropped,
    )


@dataclass(frozen=True)
class Fold:
    """One walk-forward split: row masks over a :class:`TrainingSet` frame."""

    number: int
    train: np.ndarray  # bool, shape (n_rows,)
    valid: np.ndarray  # bool, shape (n_rows,)
    train_start: date
    train_end: date
    valid_start: date
    valid_end: date


def walk_forward_folds(data: TrainingSet, settings: ModelSettings) -> list[Fold]:
    """Consecutive validation blocks at the end of the history, each trained on what precedes it.

    The last ``validation_folds * validation_sessions`` sessions form the
    validation blocks. A block's training rows are the rows dated before it
    whose label ended before the block's first session (purging), minus the
    ``embargo`` sessions just before the block. Folds that would train on
    fewer than ``min_train_sessions`` sessions are dropped.

    Raises
    ------
    TrainingDataError
        Not even one fold fits in the history.
    """
    sessions = data.sessions
    dates = data.frame["session_date"].to_numpy()
    ends = data.frame["label_end_date"].to_numpy()
    position = np.searchsorted(sessions, dates)
    size = settings.validation_sessions
    embargo = settings.embargo
    folds: list[Fold] = []
    k = settings.validation_folds
    first_valid = sessions.size - k * size
    for j in range(k):
        start = first_valid + j * size
        stop = start + size
        if start - embargo < settings.min_train_sessions:
            continue
        valid = (position >= start) & (position < stop)
        train = (position < start - embargo) & (ends < sessions[start])
        if not train.any() or not valid.any():
            continue
        train_dates = dates[train]
        folds.append(
            Fold(
                number=len(folds) + 1,
                train=train,
                valid=valid,
                train_start=pd.Timestamp(train_dates.min()).date(),
                train_end=pd.Timestamp(train_dates.max()).date(),
                valid_start=pd.Timestamp(sessions[start]).date(),
                valid_end=pd.Timestamp(sessions[stop - 1]).date(),
            )
        )
    if not folds:
        need = settings.min_train_sessions + embargo + size
        raise TrainingDataError(
            f"{sessions.size} labelled sessions at {data.as_of}: a walk-forward fold needs at "
            f"least {need} (min_train_sessions + embargo + validation_sessions)"
        )
    return folds
