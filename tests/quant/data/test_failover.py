"""Failover chains: provider lists in the settings, per-symbol fallback, what came from where."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from quant.calendar import get_calendar
from quant.config import Settings, load_settings
from quant.data import (
    CsvProvider,
    FailoverProvider,
    SyntheticProvider,
    ingest_bars,
    provider_from_settings,
)
from quant.exceptions import ConfigurationError, ProviderError
from quant.testing import FakeAlpaca, StaticProvider
from quant.testing.alpaca_data import bar_records, provider_on
from quant.testing.db import query

END = date(2024, 6, 28)
KEY, SECRET = "k", "s"


def _window(sessions: int) -> tuple[date, list[date]]:
    cal = get_calendar("XNYS")
    start = cal.shift(END, -(sessions - 1))
    return start, cal.sessions(start, END)


@pytest.fixture()
def market() -> pd.DataFrame:
    start, _ = _window(10)
    return SyntheticProvider(symbols=6, seed=2).bars(start, END)


@pytest.fixture()
def alpaca_missing_two(market: pd.DataFrame) -> Iterator[FakeAlpaca]:
    """A fake Alpaca that has every symbol except SYN005 and SYN006."""
    served = market.loc[~market["symbol"].isin(["SYN005", "SYN006"])]
    with FakeAlpaca(api_key=KEY, secret_key=SECRET, bars=bar_records(served)) as fake:
        yield fake


# ------------------------------------------------------------------------- settings


def test_settings_when_single_provider_name_then_backward_compatible() -> None:
    settings = load_settings(provider="synthetic")
    assert settings.provider == "synthetic"
    assert settings.providers == ("synthetic",)
    assert isinstance(provider_from_settings(settings), SyntheticProvider)


def test_settings_when_comma_list_then_chain_in_order(tmp_path: Path, market: pd.DataFrame) -> None:
    market.to_csv(tmp_path / "bars.csv", index=False, date_format="%Y-%m-%d")
    settings = load_settings(provider=" CSV , synthetic", csv_dir=str(tmp_path))
    assert settings.providers == ("csv", "synthetic")
    chain = provider_from_settings(settings)
    assert isinstance(chain, FailoverProvider)
    assert [p.name for p in chain.providers] == ["csv", "synthetic"]
    assert isinstance(chain.providers[0], CsvProvider)


@pytest.mark.parametrize("value", ["csv,bloomberg", "csv,,synthetic", "csv,csv", ""])
def test_settings_when_provider_list_invalid_then_refused_naming_setting(value: str) -> None:
    with pytest.raises(ConfigurationError, match="QUANT_PROVIDER"):
        load_settings(provider=value)


def test_settings_when_provider_symbols_from_environment_then_split_and_upper_cased(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QUANT_PROVIDER_SYMBOLS", "aapl, msft,,AAPL")
    assert load_settings().provider_symbols == ("AAPL", "MSFT")


# ------------------------------------------------------------------------- chain


def test_chain_when_first_provider_lacks_symbols_then_second_serves_them(
    alpaca_missing_two: FakeAlpaca, market: pd.DataFrame
) -> None:
    backup = StaticProvider("backup", market)
    chain = FailoverProvider([provider_on(alpaca_missing_two), backup])

    sourced = chain.fetch_bars(market["date"].min().date(), END)

    assert sourced.served == {
        "alpaca": ["SYN001", "SYN002", "SYN003", "SYN004"],
        "backup": ["SYN005", "SYN006"],
    }
    assert sourced.skipped == {"SYN005": ["alpaca"], "SYN006": ["alpaca"]}
    assert backup.calls[0][2] == ("SYN005", "SYN006")  # only what the first did not deliver
    got = (
        sourced.bars.drop(columns="provider").sort_values(["date", "symbol"]).reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(got, market.reset_index(drop=True), check_exact=False)


def test_chain_when_first_provider_fails_past_retries_then_next_serves_and_error_kept(
    alpaca_missing_two: FakeAlpaca, market: pd.DataFrame
) -> None:
    alpaca_missing_two.fail_next(503, count=100)
    chain = FailoverProvider(
        [provider_on(alpaca_missing_two, max_attempts=2), StaticProvider("backup", market)]
    )
    sourced = chain.fetch_bars(market["date"].min().date(), END)
    assert list(sourced.served) == ["backup"]
    assert "HTTP 503" in sourced.errors["alpaca"]


def test_chain_when_only_provider_fails_then_provider_error(alpaca_missing_two: FakeAlpaca) -> None:
    alpaca_missing_two.fail_next(503, count=100)
    chain = FailoverProvider([provider_on(alpaca_missing_two, max_attempts=2)], symbols=["SYN001"])
    with pytest.raises(ProviderError, match="no provider of alpaca delivered"):
        chain.fetch_bars(date(2024, 6, 3), END)


def test_chain_when_no_member_lists_universe_and_no_symbols_then_error_names_setting(
    alpaca_missing_two: FakeAlpaca,
) -> None:
    with pytest.raises(ProviderError, match="QUANT_PROVIDER_SYMBOLS"):
        FailoverProvider([provider_on(alpaca_missing_two)]).fetch_bars(date(2024, 6, 3), END)


def test_chain_when_same_name_twice_then_configuration_error(market: pd.DataFrame) -> None:
    with pytest.raises(ConfigurationError, match="twice"):
        FailoverProvider([StaticProvider("a", market), StaticProvider("a", market)])


@pytest.mark.integration
def test_ingest_when_chain_then_provider_column_and_ingestion_sources_record_origin(
    clean_db: Settings, alpaca_missing_two: FakeAlpaca, market: pd.DataFrame
) -> None:
    start, window = _window(10)
    chain = FailoverProvider([provider_on(alpaca_missing_two), StaticProvider("backup", market)])

    result = ingest_bars(END, provider=chain, start=start, settings=clean_db)

    assert result.provider == "alpaca,backup"
    assert result.sources == {"alpaca": 4, "backup": 2}
    by_symbol = {
        s: (p, n)
        for s, p, n in query(
            clean_db, "select symbol, provider, count(*) from raw.bars group by 1, 2 order by 1"
        )
    }
    sources = query(
        clean_db,
        "select symbol, provider, rows_received, first_date, last_date, skipped_providers "
        "from ops.ingestion_sources order by symbol",
    )
    ingestions = query(clean_db, "select provider, provider_errors from ops.ingestions")
    assert {s: p for s, (p, _) in by_symbol.items()} == {
        "SYN001": "alpaca",
        "SYN002": "alpaca",
        "SYN003": "alpaca",
        "SYN004": "alpaca",
        "SYN005": "backup",
        "SYN006": "backup",
    }
    assert all(n == len(window) for _, n in by_symbol.values())
    assert [(s, p, n, lo, hi, skipped) for s, p, n, lo, hi, skipped in sources] == [
        (
            s,
            by_symbol[s][0],
            len(window),
            window[0],
            window[-1],
            ["alpaca"] if s in ("SYN005", "SYN006") else [],
        )
        for s in sorted(by_symbol)
    ]
    assert ingestions == [("alpaca,backup", {})]

    # the next day: nothing is missing for any member of the chain, nothing is fetched
    again = ingest_bars(END, provider=chain, start=start, settings=clean_db)
    assert again.sessions_fetched == 0 and again.rows_changed == 0


def test_bars_frame_when_volume_fractional_then_rounded_typed_and_sorted() -> None:
    from quant.data._base import BAR_DTYPES, bars_frame

    raw = pd.DataFrame(
        {
            "date": [date(2024, 1, 3), date(2024, 1, 2), date(2024, 1, 2)],
            "symbol": ["AAA", "BBB", "AAA"],
            "open": [1, 2, 3],
            "high": [1, 2, 3],
            "low": [1, 2, 3],
            "close": [1, 2, 3],
            "volume": [10.6, 20.2, 30.0],
            "extra": ["x", "y", "z"],
        }
    )
    got = bars_frame(raw)
    assert list(got.columns) == list(BAR_DTYPES)
    pairs = list(zip(got["symbol"], got["volume"], strict=True))
    assert pairs == [("AAA", 30), ("BBB", 20), ("AAA", 11)]
    assert str(got["volume"].dtype) == "int64" and str(got["date"].dtype) == "datetime64[ns]"
    assert bars_frame(raw.iloc[:0]).empty
