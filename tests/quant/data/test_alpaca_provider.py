"""The alpaca provider through the real alpaca-py client against a local fake Alpaca server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pandas as pd
import pytest

from quant.data import BAR_COLUMNS, MarketDataProvider, SyntheticProvider, get_provider
from quant.exceptions import ConfigurationError, ProviderError, ProviderUnavailableError
from quant.testing import FakeAlpaca
from quant.testing.alpaca_data import bar_records, provider_on
from quant.venues.alpaca import AlpacaProvider

KEY, SECRET = "test-key-id", "test-secret-key"
START, END = date(2024, 3, 1), date(2024, 4, 30)


@pytest.fixture(scope="module")
def market() -> tuple[pd.DataFrame, pd.DataFrame]:
    source = SyntheticProvider(symbols=6, seed=5)
    return source.bars(START, END), source.corporate_actions(date(2020, 1, 1), END)


@pytest.fixture()
def fake(market: tuple[pd.DataFrame, pd.DataFrame]) -> Iterator[FakeAlpaca]:
    bars, _ = market
    server = FakeAlpaca(api_key=KEY, secret_key=SECRET, bars=bar_records(bars), page_size=50)
    with server:
        yield server


def _provider(fake: FakeAlpaca, sleeps: list[float] | None = None, **kwargs) -> AlpacaProvider:
    sleeps = [] if sleeps is None else sleeps
    return provider_on(fake, backoff_s=0.01, max_backoff_s=0.05, sleep=sleeps.append, **kwargs)


def test_alpaca_when_bars_span_pages_then_all_pages_read_and_equal_to_source(
    fake: FakeAlpaca, market: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    source, _ = market
    symbols = sorted(source["symbol"].unique())
    provider = _provider(fake)
    assert isinstance(provider, MarketDataProvider)

    got = provider.bars(START, END, symbols)

    assert list(got.columns) == list(BAR_COLUMNS)
    pd.testing.assert_frame_equal(got, source.reset_index(drop=True), check_exact=False)
    pages = fake.requests_to("/v2/stocks/bars")
    assert len(pages) == -(-len(source) // fake.page_size)  # ceil: one request per page
    assert all(p.query["adjustment"] == "raw" and p.query["feed"] == "iex" for p in pages)
    assert all(p.query["timeframe"] == "1Day" for p in pages)
    assert [bool(p.query.get("page_token")) for p in pages] == [False] + [True] * (len(pages) - 1)


def test_alpaca_when_range_is_narrow_then_only_those_sessions(
    fake: FakeAlpaca, market: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    source, _ = market
    day = date(2024, 4, 2)
    got = _provider(fake).bars(day, day, ["SYN001"])
    assert got["date"].tolist() == [pd.Timestamp(day)]
    want = source[(source["symbol"] == "SYN001") & (source["date"] == pd.Timestamp(day))]
    assert got["close"].item() == pytest.approx(want["close"].item())


def test_alpaca_when_429_then_success_then_retried_with_backoff_and_bars_returned(
    fake: FakeAlpaca, market: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    source, _ = market
    sleeps: list[float] = []
    fake.fail_next(429, path_prefix="/v2/stocks/bars", retry_after_s=0.02)

    got = _provider(fake, sleeps).bars(START, END, ["SYN002"])

    assert len(got) == int((source["symbol"] == "SYN002").sum())
    statuses = fake.requests_to("/v2/stocks/bars")
    assert len(statuses) == 2  # the 429, then the page that succeeded
    assert sleeps == [pytest.approx(0.02)]  # Retry-After honoured (above the 0.01 s backoff)


def test_alpaca_when_429_mid_pagination_then_only_that_page_retried(
    fake: FakeAlpaca, market: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    source, _ = market
    provider = _provider(fake)
    provider.bars(START, END, ["SYN001", "SYN002"])  # learn the number of pages
    pages = len(fake.requests_to("/v2/stocks/bars"))
    assert pages >= 2
    fake.requests.clear()

    original = fake.handle
    calls = {"n": 0}

    def second_page_fails_once(request):
        if request.path == "/v2/stocks/bars":
            calls["n"] += 1
            if calls["n"] == 2:
                from quant.testing import FakeResponse

                return FakeResponse(429, {"code": 429, "message": "slow down"})
        return original(request)

    fake.handle = second_page_fails_once  # type: ignore[method-assign]
    got = provider.bars(START, END, ["SYN001", "SYN002"])
    assert len(got) == int(source["symbol"].isin(["SYN001", "SYN002"]).sum())
    assert calls["n"] == pages + 1


def test_alpaca_when_5xx_persists_then_gives_up_after_bound_with_clear_error(
    fake: FakeAlpaca,
) -> None:
    sleeps: list[float] = []
    fake.fail_next(503, count=50)
    provider = _provider(fake, sleeps, max_attempts=4)

    with pytest.raises(ProviderUnavailableError) as caught:
        provider.bars(START, END, ["SYN001"])

    assert "failed 4 times" in str(caught.value) and "HTTP 503" in str(caught.value)
    assert len(fake.requests_to("/v2/stocks/bars")) == 4  # bounded: alpaca-py adds no retries
    assert sleeps == [0.01, 0.02, 0.04]  # exponential backoff between the attempts


def test_alpaca_when_504_persists_then_sdk_retries_do_not_multiply_attempts(
    fake: FakeAlpaca,
) -> None:
    fake.fail_next(504, count=50)
    with pytest.raises(ProviderUnavailableError):
        _provider(fake, max_attempts=3).bars(START, END, ["SYN001"])
    assert len(fake.requests_to("/v2/stocks/bars")) == 3


def test_alpaca_when_credentials_wrong_then_provider_error_without_retry(fake: FakeAlpaca) -> None:
    provider = AlpacaProvider(data_url=fake.url, api_key=KEY, secret_key="wrong")
    with pytest.raises(ProviderError, match="HTTP 401") as caught:
        provider.bars(START, END, ["SYN001"])
    assert not isinstance(caught.value, ProviderUnavailableError)
    assert "wrong" not in str(caught.value)
    assert len(fake.requests) == 1


def test_alpaca_when_credentials_missing_then_configuration_error_naming_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="APCA_API_KEY_ID and APCA_API_SECRET_KEY"):
        get_provider("alpaca", symbols=["AAA"])


def test_alpaca_when_credentials_in_environment_then_sent_as_headers(
    fake: FakeAlpaca, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    provider = get_provider("alpaca", symbols=["SYN003"], data_url=fake.url, feed="sip")
    got = provider.bars(START, END)
    assert set(got["symbol"]) == {"SYN003"}
    request = fake.requests_to("/v2/stocks/bars")[0]
    assert request.headers["apca-api-key-id"] == KEY
    assert request.query["feed"] == "sip"


def test_alpaca_when_no_symbols_configured_then_cannot_list_universe(fake: FakeAlpaca) -> None:
    with pytest.raises(ProviderError, match="QUANT_PROVIDER_SYMBOLS"):
        _provider(fake).bars(START, END)


def test_alpaca_when_corporate_actions_paginated_then_splits_and_dividends_mapped(
    market: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    actions = [
        {
            "kind": "forward_splits",
            "symbol": "AAA",
            "ex_date": date(2024, 3, 4),
            "new_rate": 4,
            "old_rate": 1,
        },
        {
            "kind": "reverse_splits",
            "symbol": "BBB",
            "ex_date": date(2024, 3, 5),
            "new_rate": 1,
            "old_rate": 10,
            "old_cusip": "1",
            "new_cusip": "2",
        },
        {
            "kind": "cash_dividends",
            "symbol": "AAA",
            "ex_date": date(2024, 3, 6),
            "rate": 0.5,
            "special": False,
            "foreign": False,
        },
        {
            "kind": "cash_dividends",
            "symbol": "AAA",
            "ex_date": date(2024, 3, 6),
            "rate": 0.25,
            "special": True,
            "foreign": False,
        },
        {
            "kind": "cash_dividends",
            "symbol": "CCC",
            "ex_date": date(2024, 5, 6),
            "rate": 1.0,
            "special": False,
            "foreign": False,
        },
    ]
    with FakeAlpaca(api_key=KEY, secret_key=SECRET, actions=actions, page_size=2) as server:
        got = _provider(server).corporate_actions(START, END, ["AAA", "BBB", "CCC"])
        assert len(server.requests_to("/v1/corporate-actions")) == 2  # 4 in range, pages of 2
    rows = {(r.symbol, r.action_type): r for r in got.itertuples()}
    assert set(rows) == {("AAA", "split"), ("BBB", "split"), ("AAA", "dividend")}
    assert rows[("AAA", "split")].split_ratio == 4.0
    assert rows[("BBB", "split")].split_ratio == pytest.approx(0.1)
    assert rows[("AAA", "dividend")].dividend_usd == pytest.approx(0.75)  # regular + special


def test_alpaca_when_server_hangs_then_request_times_out_and_is_retried_within_bound(
    fake: FakeAlpaca,
) -> None:
    import time

    from quant.testing import FakeResponse

    @fake.route("GET", "/v2/stocks/bars")
    def slow(request):
        time.sleep(1.0)
        return FakeResponse(200, {"bars": {}, "next_page_token": None})

    provider = _provider(fake, max_attempts=2, timeout_s=0.2)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailableError, match="failed 2 times.*Timeout"):
        provider.bars(START, END, ["SYN001"])
    assert time.monotonic() - started < 1.5  # two 0.2 s timeouts, not two 1 s answers
    assert len(fake.requests_to("/v2/stocks/bars")) == 2
