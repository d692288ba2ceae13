"""What the model stages keep between sessions: parsed artifacts and prepared drift references."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from quant.exceptions import ModelArtifactError
from quant.model import feature_drift, reference_distribution
from quant.model._drift import DriftReference
from quant.model._registry import load_booster


def _model_text(seed: int = 0) -> str:
    import lightgbm as lgb

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 3))
    y = x[:, 0] - 0.5 * x[:, 1] + rng.normal(scale=0.1, size=300)
    params = {"objective": "regression", "verbosity": -1, "num_threads": 1, "seed": seed}
    return lgb.train(params, lgb.Dataset(x, label=y), num_boost_round=5).model_to_string()


def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return hashlib.sha256(text.encode()).hexdigest()


def test_load_booster_when_called_twice_then_same_booster_and_same_scores(tmp_path: Path) -> None:
    import lightgbm as lgb

    text = _model_text()
    path = tmp_path / "model.txt"
    checksum = _write(path, text)
    first = load_booster(path, checksum)
    second = load_booster(path, checksum)
    assert second is first
    x = np.random.default_rng(1).normal(size=(20, 3))
    np.testing.assert_array_equal(first.predict(x), lgb.Booster(model_str=text).predict(x))


def test_load_booster_when_file_replaced_then_checksum_checked_again(tmp_path: Path) -> None:
    path = tmp_path / "model.txt"
    checksum = _write(path, _model_text(0))
    load_booster(path, checksum)
    _write(path, _model_text(1) + "\n")  # another model under the registered name
    with pytest.raises(ModelArtifactError, match="checksum"):
        load_booster(path, checksum)
    path.unlink()
    with pytest.raises(ModelArtifactError, match="missing"):
        load_booster(path, checksum)


def test_load_booster_when_checksum_wrong_then_refused_before_any_use(tmp_path: Path) -> None:
    path = tmp_path / "model.txt"
    _write(path, _model_text())
    with pytest.raises(ModelArtifactError, match="checksum"):
        load_booster(path, "0" * 64)


def _shares_by_definition(values: np.ndarray, edges: list[float]) -> list[float]:
    finite = values[np.isfinite(values)]
    bounds = [-math.inf, *edges, math.inf]
    return [
        float(np.count_nonzero((finite >= lo) & (finite < hi))) / finite.size
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
    ]


_VALUES = arrays(
    np.float64,
    st.integers(1, 200),
    elements=st.one_of(
        st.sampled_from([0.0, 1.0, -1.0, 2.5, np.nan, np.inf]),
        st.floats(-1e6, 1e6, allow_nan=False),
    ),
)


@settings(max_examples=200, deadline=None)
@given(values=_VALUES, bins=st.integers(2, 12))
def test_reference_distribution_when_any_sample_then_quantile_edges_and_bin_shares(
    values: np.ndarray, bins: int
) -> None:
    ref = reference_distribution(pd.DataFrame({"x": values}), ["x"], bins)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        assert ref == {}
        return
    probs = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    edges = [float(e) for e in np.unique(np.quantile(finite, probs))]
    assert ref["x"]["edges"] == edges
    assert ref["x"]["shares"] == _shares_by_definition(values, edges)


@settings(max_examples=100, deadline=None)
@given(reference=_VALUES, later=_VALUES, bins=st.integers(2, 12))
def test_drift_reference_when_any_sample_then_equals_feature_drift(
    reference: np.ndarray, later: np.ndarray, bins: int
) -> None:
    train = pd.DataFrame({"a": reference, "b": reference[::-1], "gone": reference})
    ref = reference_distribution(train, ["a", "b", "gone"], bins)
    frame = pd.DataFrame({"a": later, "b": np.full(later.size, np.nan)})
    prepared = DriftReference(ref)
    expected = feature_drift(ref, frame)
    assert prepared.drift(frame) == expected
    assert list(prepared.drift(frame)) == list(expected)  # largest first, same order
    if ref:
        assert expected["gone"] == math.inf


_BOOSTER_TEXT = _model_text(3)


@settings(max_examples=100, deadline=None)
@given(
    symbols=st.lists(st.sampled_from(["AAA", "BBB", "CCC", "DDD", "EEE", "b", "Zz"]), max_size=12),
    universe=st.one_of(
        st.none(), st.lists(st.sampled_from(["AAA", "BBB", "CCC", "FFF", "b"]), max_size=6)
    ),
    data=st.data(),
)
def test_score_cross_section_when_numeric_frame_then_same_as_general_path(
    symbols: list[str], universe: list[str] | None, data: st.DataObject
) -> None:
    from pandas.testing import assert_frame_equal

    from quant.model import score_cross_section

    value = st.one_of(st.just(np.nan), st.floats(-3, 3))
    columns = {
        name: data.draw(st.lists(value, min_size=len(symbols), max_size=len(symbols)))
        for name in ("f0", "f1", "f2")
    }
    frame = pd.DataFrame({"symbol": pd.Series(symbols, dtype=str), **columns})
    frame = frame.astype({name: float for name in columns})
    general = frame.astype({"f2": object})  # an object column takes the general path
    fast = score_cross_section(_BOOSTER_TEXT, ["f0", "f1", "f2"], frame, universe)
    slow = score_cross_section(_BOOSTER_TEXT, ["f0", "f1", "f2"], general, universe)
    assert fast.skipped == slow.skipped
    assert list(fast.skipped) == list(slow.skipped)
    assert_frame_equal(fast.scores, slow.scores, check_exact=True)
