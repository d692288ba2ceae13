"""The in-memory features follow marts.features on the edge cases the marts define."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant.model import price_features


def _bars(volume: list[float]) -> pd.DataFrame:
    days = pd.bdate_range("2024-01-02", periods=len(volume)).date
    close = 100.0 + np.arange(len(volume), dtype=float)
    return pd.DataFrame({"date": days, "symbol": "FLAT", "open": close, "high": close + 1,
                         "low": close - 1, "close": close, "volume": volume})


def test_volume_zscore_when_volume_constant_then_zero_once_window_full_not_nan() -> None:
    features = price_features(_bars([1_000_000.0] * 30)).sort_values("session_date")
    z = features["volume_zscore_20d"].to_numpy()
    assert np.isnan(z[:19]).all()  # the 20-session window is not full yet
    assert (z[19:] == 0.0).all()


def test_volume_zscore_when_last_volume_doubles_then_positive_outlier() -> None:
    volume = [1_000_000.0 + 1_000.0 * (i % 3) for i in range(29)] + [2_000_000.0]
    z = price_features(_bars(volume)).sort_values("session_date")["volume_zscore_20d"]
    assert z.iloc[-1] > 3.0
