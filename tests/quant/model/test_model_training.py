"""Training on synthetic frames: point in time, determinism, honest validation, folds."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from quant.config import ModelSettings
from quant.exceptions import TrainingDataError
from quant.model import (
    label_columns,
    score_cross_section,
    train_model,
    training_set,
    walk_forward_folds,
)
from quant.testing.marts import MARKET_AS_OF as AS_OF
from quant.testing.marts import Market


def _after(frame: pd.DataFrame, day: date) -> pd.Series:
    return pd.to_datetime(frame["session_date"]) > pd.Timestamp(day)


def _perturb_after(market: Market, day: date, seed: int = 1) -> Market:
    """Every feature and label row dated after ``day`` replaced by noise, plus labels that end after it."""
    rng = np.random.default_rng(seed)
    features = market.features.copy()
    late = _after(features, day)
    numeric = [c for c in features.columns if c not in ("symbol", "session_date")]
    features.loc[late, numeric] = rng.normal(size=(int(late.sum()), len(numeric)))
    labels = market.labels.copy()
    late_labels = _after(labels, day)
    for h in (1, 5, 20):
        ret, end = label_columns(h)
        labels.loc[late_labels, ret] = rng.normal(size=int(late_labels.sum()))
        ends_late = pd.to_datetime(labels[end]) > pd.Timestamp(day)
        labels.loc[ends_late, ret] = rng.normal(size=int(ends_late.sum()))
    return Market(features=features, labels=labels, symbols=market.symbols)


def _cross_section(market: Market, day: date) -> pd.DataFrame:
    frame = market.features
    return frame[pd.to_datetime(frame["session_date"]) == pd.Timestamp(day)]


def test_train_model_when_rows_after_as_of_perturbed_then_model_and_scores_unchanged(
    signal_market: Market, model_settings: ModelSettings
) -> None:
    perturbed = _perturb_after(signal_market, AS_OF)
    assert not perturbed.features.equals(signal_market.features)

    original = train_model(
        signal_market.features, signal_market.labels, as_of=AS_OF, settings=model_settings
    )
    again = train_model(perturbed.features, perturbed.labels, as_of=AS_OF, settings=model_settings)

    assert again.checksum == original.checksum
    assert again.model_text == original.model_text
    before = score_cross_section(
        original.model_text, original.features, _cross_section(signal_market, AS_OF)
    )
    after = score_cross_section(again.model_text, again.features, _cross_section(perturbed, AS_OF))
    pd.testing.assert_frame_equal(before.scores, after.scores)
    assert len(before.scores) > 50


def test_train_model_when_row_on_or_before_as_of_perturbed_then_model_changes(
    signal_market: Market, model_settings: ModelSettings
) -> None:
    # the counterpart of the test above: the comparison can detect a change
    labels = signal_market.labels.copy()
    ret, end = label_columns(model_settings.horizon_sessions)
    known = pd.to_datetime(labels[end]) <= pd.Timestamp(AS_OF)
    labels.loc[known, ret] = -labels.loc[known, ret]
    original = train_model(
        signal_market.features, signal_market.labels, as_of=AS_OF, settings=model_settings
    )
    flipped = train_model(signal_market.features, labels, as_of=AS_OF, settings=model_settings)
    assert flipped.checksum != original.checksum


def test_train_model_when_trained_twice_on_same_data_then_identical_artifacts(
    signal_market: Market, model_settings: ModelSettings
) -> None:
    first = train_model(
        signal_market.features, signal_market.labels, as_of=AS_OF, settings=model_settings
    )
    shuffled_features = signal_market.features.sample(frac=1.0, random_state=3)
    shuffled_labels = signal_market.labels.sample(frac=1.0, random_state=4)
    second = train_model(shuffled_features, shuffled_labels, as_of=AS_OF, settings=model_settings)
    assert second.model_text.encode() == first.model_text.encode()
    assert second.checksum == first.checksum
    assert second.metrics == first.metrics


def test_train_model_when_seed_differs_then_artifact_differs(
    signal_market: Market, model_settings: ModelSettings
) -> None:
    first = train_model(
        signal_market.features, signal_market.labels, as_of=AS_OF, settings=model_settings
    )
    other = model_settings.model_copy(update={"seed": model_settings.seed + 1})
    second = train_model(signal_market.features, signal_market.labels, as_of=AS_OF, settings=other)
    assert second.checksum != first.checksum


def test_train_model_when_signal_planted_then_out_of_sample_rank_ic_above_005(
    signal_market: Market, model_settings: ModelSettings
) -> None:
    model = train_model(
        signal_market.features, signal_market.labels, as_of=AS_OF, settings=model_settings
    )
    validation = model.metrics["validation"]
    assert validation["rank_ic"] > 0.05
    assert validation["quintile_spread"] > 0
    assert validation["sessions"] >= 80
    assert len(model.metrics["folds"]) >= 2


def test_train_model_when_no_signal_then_out_of_sample_rank_ic_near_zero(
    null_market: Market, model_settings: ModelSettings
) -> None:
    model = train_model(
        null_market.features, null_market.labels, as_of=AS_OF, settings=model_settings
    )
    validation = model.metrics["validation"]
    assert abs(validation["rank_ic"]) < 0.04
    assert abs(validation["icir"]) < 0.5


def test_train_model_when_lambdarank_then_learns_planted_signal(
    signal_market: Market, model_settings: ModelSettings
) -> None:
    settings = model_settings.model_copy(update={"objective": "lambdarank"})
    model = train_model(
        signal_market.features, signal_market.labels, as_of=AS_OF, settings=settings
    )
    assert model.params["objective"] == "lambdarank"
    assert model.metrics["validation"]["rank_ic"] > 0.03


def test_training_set_when_built_then_only_labels_ended_by_as_of_and_target_ranked(
    signal_market: Market, model_settings: ModelSettings
) -> None:
    data = training_set(
        signal_market.features, signal_market.labels, as_of=AS_OF, settings=model_settings
    )
    frame = data.frame
    assert frame["label_end_date"].max() <= pd.Timestamp(AS_OF)
    assert frame["session_date"].max() < pd.Timestamp(AS_OF)
    assert not frame[list(data.features)].isna().any().any()
    per_date = frame.groupby("session_date")["target"]
    assert per_date.mean().abs().max() < 1e-12
    assert per_date.min().min() > -0.5 and per_date.max().max() < 0.5
    # rank target orders names as the forward return does
    one_day = frame[frame["session_date"] == frame["session_date"].max()]
    assert one_day["target"].rank().equals(one_day["forward_return"].rank())


def test_training_set_when_zscore_target_then_standardised_per_session(
    signal_market: Market, model_settings: ModelSettings
) -> None:
    settings = model_settings.model_copy(update={"target": "zscore"})
    frame = training_set(
        signal_market.features, signal_market.labels, as_of=AS_OF, settings=settings
    ).frame
    per_date = frame.groupby("session_date")["target"]
    assert per_date.mean().abs().max() < 0.05
    assert per_date.std().between(0.9, 1.05).all()
    assert frame["target"].abs().max() <= 3.0


def test_training_set_when_feature_mostly_null_then_left_out(
    signal_market: Market, model_settings: ModelSettings
) -> None:
    data = training_set(
        signal_market.features, signal_market.labels, as_of=AS_OF, settings=model_settings
    )
    # 252-session windows are null for more than half of this ~420-session history
    assert "return_252d" in data.dropped_features
    assert "return_252d" not in data.features
    assert "return_5d" in data.features


def test_training_set_when_horizon_has_no_label_column_then_error_names_it(
    signal_market: Market,
) -> None:
    with pytest.raises(TrainingDataError, match="forward_return_3d"):
        training_set(
            signal_market.features,
            signal_market.labels,
            as_of=AS_OF,
            settings=ModelSettings(horizon_sessions=3),
        )


def test_walk_forward_folds_when_built_then_purged_embargoed_and_ordered(
    signal_market: Market, model_settings: ModelSettings
) -> None:
    data = training_set(
        signal_market.features, signal_market.labels, as_of=AS_OF, settings=model_settings
    )
    folds = walk_forward_folds(data, model_settings)
    sessions = list(data.sessions)
    frame = data.frame
    previous_end = None
    for fold in folds:
        train = frame[fold.train]
        valid = frame[fold.valid]
        valid_start = valid["session_date"].min()
        # purged: every training label ended before validation starts
        assert train["label_end_date"].max() < valid_start
        # embargoed: at least `embargo` sessions between the last training and first validation session
        gap = sessions.index(valid_start.to_datetime64()) - sessions.index(
            train["session_date"].max().to_datetime64()
        )
        assert gap > model_settings.embargo
        assert not (fold.train & fold.valid).any()
        assert valid["session_date"].nunique() == model_settings.validation_sessions
        if previous_end is not None:
            assert valid_start > previous_end
        previous_end = valid["session_date"].max()
    assert previous_end == frame["session_date"].max()


def test_walk_forward_folds_when_history_too_short_then_training_data_error(
    signal_market: Market, model_settings: ModelSettings
) -> None:
    with pytest.raises(TrainingDataError, match="walk-forward fold needs"):
        train_model(
            signal_market.features,
            signal_market.labels,
            as_of=date(2015, 9, 30),
            settings=model_settings.model_copy(update={"max_feature_null_share": 0.9}),
        )
