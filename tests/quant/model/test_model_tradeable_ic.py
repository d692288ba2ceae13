"""IC against the return the book can trade: from the next session's open, on constructed bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant.model import daily_metrics, forward_labels, ic_decay, tradeable_daily_metrics

DAYS = list(pd.bdate_range("2024-03-04", periods=8).date)
SCORES = np.array([-2.0, -1.0, -0.5, 0.5, 1.0, 2.0])
NAMES = [f"N{i}" for i in range(SCORES.size)]


def _bars() -> pd.DataFrame:
    """Six names whose close-to-close, open-to-open and same-day-open returns disagree at DAYS[1].

    Scored at D = DAYS[1]: the close of D to the close of D+1 falls with the score, the open
    of D to the open of D+1 falls with it too, but the open of D+1 (where the orders fill) to
    the open of D+2 rises with it.
    """
    rows = []
    for name, s in zip(NAMES, SCORES, strict=True):
        opens = [100.0] * len(DAYS)
        closes = [100.0] * len(DAYS)
        opens[1] = 100.0 * (1 + 0.02 * s)  # D's open: D -> D+1 open falls with the score
        closes[2] = 100.0 * (1 - 0.01 * s)  # D+1's close: close to close falls with the score
        for later in range(3, len(DAYS)):  # from D+2's open on: the tradeable return rises with it
            opens[later] = 100.0 * (1 + 0.01 * s)
        for day, o, c in zip(DAYS, opens, closes, strict=True):
            rows.append((day, name, o, max(o, c), min(o, c), c, 1_000_000))
    return pd.DataFrame(rows, columns=["date", "symbol", "open", "high", "low", "close", "volume"])


def _scores() -> pd.DataFrame:
    return pd.DataFrame({"session_date": [DAYS[1]] * SCORES.size, "symbol": NAMES, "score": SCORES})


def test_tradeable_ic_when_close_and_open_returns_disagree_then_measured_from_next_open() -> None:
    labels = forward_labels(_bars(), horizons=(1,), open_horizons=(1, 5))
    at_d = labels[labels["session_date"] == DAYS[1]].set_index("symbol").loc[NAMES]
    # the label runs from D+1's open to D+2's open, known at D+2
    assert (at_d["open_label_end_date_1d"] == DAYS[3]).all()
    assert at_d["open_return_1d"].to_numpy() == pytest.approx(0.01 * SCORES)

    tradeable = tradeable_daily_metrics(_scores(), labels, 1)
    close_to_close = daily_metrics([DAYS[1]] * SCORES.size, SCORES, at_d["forward_return_1d"])
    assert tradeable.loc[pd.Timestamp(DAYS[1]), "rank_ic"] == pytest.approx(1.0)
    assert tradeable.loc[pd.Timestamp(DAYS[1]), "ic"] == pytest.approx(1.0)
    assert close_to_close["rank_ic"].iloc[0] == pytest.approx(-1.0)


def test_ic_decay_when_horizons_known_then_ic_rank_ic_icir_per_horizon() -> None:
    labels = forward_labels(_bars(), horizons=(1,), open_horizons=(1, 5))
    decay = ic_decay(_scores(), labels, horizons=(1, 5, 10))
    assert set(decay) == {"1", "5"}  # no 10-session column: left out, not invented
    assert decay["1"]["rank_ic"] == pytest.approx(1.0)
    assert decay["1"]["sessions"] == 1
    assert decay["1"]["icir"] is None  # one session: no standard deviation
    # from D+1's open to D+6's open: the gain at D+2's open is kept
    assert decay["5"]["rank_ic"] == pytest.approx(1.0)
