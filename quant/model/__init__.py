"""The return model: point-in-time training, walk-forward validation, registry, prediction.

A LightGBM model ranks names by their expected forward total return over
``settings.model.horizon_sessions`` sessions. :func:`retrain_model` and
:func:`predict` are the pipeline stages for a session; the frame-level
functions (:func:`train_model`, :func:`score_cross_section`, the metrics and
drift helpers) are what they are built from, usable without a database.
"""

from quant.model._drift import (
    calibrated_drift,
    feature_drift,
    population_stability_index,
    reference_distribution,
)
from quant.model._frames import forward_labels, price_features, total_return_index
from quant.model._marts import cache_model_inputs, load_features, load_labels, load_universe
from quant.model._metrics import (
    IC_HORIZONS,
    daily_metrics,
    ic_decay,
    open_return_columns,
    score_metrics,
    summarise_metrics,
    tradeable_daily_metrics,
)
from quant.model._registry import ModelRecord, champion_as_of, get_model, load_artifact
from quant.model._score import Scores, score_cross_section
from quant.model._selection import PROMOTION_CODES, decide_promotion, load_open_returns
from quant.model._stages import (
    RETRAIN_REASONS,
    fit_model,
    predict,
    retrain_due,
    retrain_model,
    schedule_due,
)
from quant.model._train import (
    Fold,
    TrainedModel,
    TrainingSet,
    feature_hash,
    label_columns,
    lightgbm_params,
    train_model,
    training_set,
    walk_forward_folds,
)

__all__ = [
    "IC_HORIZONS",
    "PROMOTION_CODES",
    "RETRAIN_REASONS",
    "Fold",
    "ModelRecord",
    "Scores",
    "TrainedModel",
    "TrainingSet",
    "cache_model_inputs",
    "calibrated_drift",
    "champion_as_of",
    "daily_metrics",
    "decide_promotion",
    "feature_drift",
    "feature_hash",
    "fit_model",
    "forward_labels",
    "get_model",
    "ic_decay",
    "label_columns",
    "lightgbm_params",
    "open_return_columns",
    "load_artifact",
    "load_features",
    "load_labels",
    "load_open_returns",
    "load_universe",
    "population_stability_index",
    "predict",
    "price_features",
    "reference_distribution",
    "retrain_due",
    "retrain_model",
    "schedule_due",
    "score_cross_section",
    "score_metrics",
    "summarise_metrics",
    "total_return_index",
    "tradeable_daily_metrics",
    "train_model",
    "training_set",
    "walk_forward_folds",
]
