"""Synthetic markets for the model tests: small, so a fit takes about a second."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from quant.data import SyntheticProvider
from quant.model import forward_labels, price_features

START = date(2015, 1, 2)
END = date(2016, 10, 31)
AS_OF = date(2016, 8, 31)
"""A Wednesday session with two months of later data after it in the frames."""


@dataclass(frozen=True)
class Market:
    """Feature and label frames of one synthetic market, as the marts would hold them."""

    features: pd.DataFrame
    labels: pd.DataFrame
    symbols: tuple[str, ...]


def market(signal_strength: float, symbols: int = 80, seed: int = 7) -> Market:
    """Features and labels of a synthetic market from START to END."""
    provider = SyntheticProvider(symbols=symbols, seed=seed, signal_strength=signal_strength)
    bars = provider.bars(START, END)
    actions = provider.corporate_actions(START, END)
    return Market(
        features=price_features(bars, actions),
        labels=forward_labels(bars, actions),
        symbols=tuple(sorted(bars["symbol"].unique())),
    )
