"""An Alpaca market-data provider on the fake, and bars in the fake's form, for tests."""

from __future__ import annotations

from typing import Any

import pandas as pd

from quant.venues.alpaca import AlpacaProvider, FakeAlpaca

__all__ = ["bar_records", "provider_on"]


def bar_records(bars: pd.DataFrame) -> list[dict[str, Any]]:
    """Bars as :class:`~quant.venues.alpaca.FakeAlpaca` serves them: one dict per row,
    ``date`` a :class:`datetime.date` and ``volume`` an int.

    Parameters
    ----------
    bars : pandas.DataFrame
        Columns :data:`~quant.data.BAR_COLUMNS` (a provider's ``bars``).
    """
    return [
        {**row, "date": row["date"].date(), "volume": int(row["volume"])}
        for row in bars.to_dict("records")
    ]


def provider_on(fake: FakeAlpaca, **overrides: Any) -> AlpacaProvider:
    """An :class:`~quant.venues.alpaca.AlpacaProvider` on ``fake`` with its credentials,
    retrying without waiting (no backoff, a sleep that returns at once); ``overrides``
    are further keyword arguments of the provider (``max_attempts``, ``sleep``, ...)."""
    options: dict[str, Any] = {
        "data_url": fake.url,
        "api_key": fake.api_key,
        "secret_key": fake.secret_key,
        "backoff_s": 0.0,
        "max_backoff_s": 0.0,
        "sleep": lambda seconds: None,
    }
    return AlpacaProvider(**(options | overrides))
