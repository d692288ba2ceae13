"""Settings of the return model: label, LightGBM, validation, retraining (``QUANT_MODEL__*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from quant._settings._section import Section

__all__ = ["ModelSettings"]


class ModelSettings(Section):
    """The return model: its label, LightGBM parameters, validation and retrain policy."""

    horizon_sessions: int = Field(
        5, ge=1, le=252, description="label horizon: forward total return over this many sessions"
    )
    target: Literal["rank", "zscore"] = Field(
        "rank", description="how the forward return is normalised per session before fitting"
    )
    objective: Literal["regression", "lambdarank"] = Field(
        "regression", description="LightGBM objective: regression on the target, or LambdaRank"
    )
    features: tuple[str, ...] = Field(
        (), description="feature columns to use; empty = every numeric column of marts.features"
    )
    max_feature_null_share: float = Field(
        0.2,
        ge=0.0,
        le=1.0,
        description="a feature null in more than this share of training rows is left out",
    )
    train_window_sessions: int = Field(
        1260, ge=60, description="sessions of history a model is trained on (about 5 years)"
    )
    validation_folds: int = Field(4, ge=1, le=20, description="walk-forward validation folds")
    validation_sessions: int = Field(
        63, ge=5, description="sessions in each walk-forward validation fold"
    )
    embargo_sessions: int | None = Field(
        None, ge=0, description="gap between training and validation sessions; unset = horizon"
    )
    min_train_sessions: int = Field(
        60, ge=10, description="fewest training sessions a validation fold may have"
    )
    num_boost_round: int = Field(400, ge=1, description="most boosting rounds")
    early_stopping_rounds: int = Field(
        30, ge=1, description="stop when the validation loss has not improved for this many rounds"
    )
    learning_rate: float = Field(0.05, gt=0, le=1, description="LightGBM learning rate")
    num_leaves: int = Field(15, ge=2, le=1024, description="LightGBM leaves per tree")
    min_data_in_leaf: int = Field(200, ge=1, description="LightGBM fewest rows in a leaf")
    feature_fraction: float = Field(
        0.8, gt=0, le=1, description="share of features each tree may use"
    )
    bagging_fraction: float = Field(0.8, gt=0, le=1, description="share of rows each tree sees")
    lambda_l2: float = Field(1.0, ge=0, description="LightGBM L2 regularisation")
    max_bin: int = Field(63, ge=4, le=1023, description="LightGBM histogram bins per feature")
    bin_sample_rows: int = Field(
        200_000,
        ge=1_000,
        description=(
            "rows LightGBM samples to place the histogram bins (bin_construct_sample_cnt); "
            "fewer than the training rows builds datasets faster and changes the model"
        ),
    )
    num_threads: int = Field(
        1, ge=1, le=64, description="LightGBM threads (fixed: part of what makes training repeatable)"
    )
    seed: int = Field(42, ge=0, description="seed of every random choice in training")
    retrain_schedule: Literal["daily", "weekly", "monthly", "never"] = Field(
        "weekly",
        description="calendar retrain: every session, first session of a week or month, or never",
    )
    drift_threshold: float = Field(
        0.25,
        gt=0,
        description=(
            "retrain when an input's population stability index (beyond its training-window "
            "variation, see drift_calibration) exceeds this"
        ),
    )
    drift_calibration: Literal["training_windows", "none"] = Field(
        "training_windows",
        description=(
            "training_windows: a feature's drift is its PSI minus the largest PSI a window of "
            "drift_window_sessions of its own training data showed (trending inputs do not "
            "fire every day); none: the raw PSI"
        ),
    )
    drift_window_sessions: int = Field(
        20, ge=1, description="latest sessions whose features are compared with the training data"
    )
    drift_statistic: Literal["max", "mean"] = Field(
        "max", description="drift of the inputs: the largest feature PSI, or their mean"
    )
    drift_bins: int = Field(10, ge=2, le=100, description="quantile bins of the drift statistic")
    marts_schema: str = Field(
        "marts",
        pattern=r"^[a-z_][a-z0-9_]*$",
        description="schema of the dbt marts the model reads (features, labels, universe)",
    )
    promotion_margin: float = Field(
        0.005,
        ge=0,
        description=(
            "a new model replaces the champion only if its rank IC on the selection window is "
            "higher by this"
        ),
    )
    selection_sessions: int = Field(
        20,
        ge=5,
        description=(
            "sessions of the selection window: the latest sessions that both the champion and a "
            "new model scored out of sample, with their tradeable return known"
        ),
    )
    selection_horizon_sessions: Literal[1, 5, 10, 20] = Field(
        1,
        description=(
            "horizon of the tradeable (next open to open) return that champion and challenger "
            "are compared on"
        ),
    )

    @field_validator("features", mode="after")
    @classmethod
    def _unique_features(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(dict.fromkeys(v.strip() for v in value if v.strip()))
        return cleaned

    @model_validator(mode="after")
    def _window_fits_a_fold(self) -> ModelSettings:
        if self.selection_sessions > self.validation_sessions:
            raise ValueError(
                f"selection_sessions ({self.selection_sessions}) is above validation_sessions "
                f"({self.validation_sessions}): the selection window lies in a new model's last "
                "validation fold"
            )
        return self

    @property
    def embargo(self) -> int:
        """Sessions embargoed between training and validation (the horizon when unset)."""
        return self.horizon_sessions if self.embargo_sessions is None else self.embargo_sessions
