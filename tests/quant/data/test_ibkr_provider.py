"""The ibkr provider through the real ib_insync/ib_async client against a fake IB Gateway."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import date

import pandas as pd
import pytest

from quant.data import BAR_COLUMNS, MarketDataProvider, SyntheticProvider
from quant.exceptions import ProviderError, ProviderUnavailableError
from quant.testing import FakeIBGateway
from quant.venues.ibkr import IN, IbkrProvider, duration_for

START, END = date(2024, 2, 1), date(2024, 3, 28)


@pytest.fixture(scope="module")
def source() -> pd.DataFrame:
    return SyntheticProvider(symbols=4, seed=9).bars(date(2023, 6, 1), END)


@pytest.fixture()
def gateway(source: pd.DataFrame) -> Iterator[FakeIBGateway]:
    bars = {
        symbol: [
            (r.date.date(), r.open, r.high, r.low, r.close, float(r.volume))
            for r in group.itertuples()
        ]
        for symbol, group in source.groupby("symbol")
    }
    with FakeIBGateway(bars) as fake:
        yield fake


def test_ibkr_when_gateway_serves_then_daily_trades_bars_equal_source(
    gateway: FakeIBGateway, source: pd.DataFrame
) -> None:
    provider = IbkrProvider(port=gateway.port, client_id=23, connect_timeout_s=5)
    assert isinstance(provider, MarketDataProvider)

    got = provider.bars(START, END, ["SYN001", "SYN002"])

    want = source[
        source["symbol"].isin(["SYN001", "SYN002"])
        & (source["date"] >= pd.Timestamp(START))
        & (source["date"] <= pd.Timestamp(END))
    ].reset_index(drop=True)
    assert list(got.columns) == list(BAR_COLUMNS)
    pd.testing.assert_frame_equal(got, want, check_exact=False)
    requests = gateway.received_of(IN.REQ_HISTORICAL_DATA)
    assert [r[3] for r in requests] == ["SYN001", "SYN002"]
    assert all(r[16] == "1 day" and r[19] == "TRADES" and r[18] == "1" for r in requests)
    assert gateway.received_of(IN.START_API)[0][2] == "23"  # the configured client id


def test_ibkr_when_symbol_unknown_to_ib_then_absent_not_an_error(gateway: FakeIBGateway) -> None:
    got = IbkrProvider(["SYN003", "NOPE"], port=gateway.port).bars(START, END)
    assert set(got["symbol"]) == {"SYN003"}


def test_ibkr_when_range_over_a_year_then_whole_years_requested_and_trimmed(
    gateway: FakeIBGateway, source: pd.DataFrame
) -> None:
    start = date(2023, 1, 2)
    got = IbkrProvider(port=gateway.port).bars(start, END, ["SYN004"])
    assert duration_for(start, END) == "2 Y"
    assert gateway.received_of(IN.REQ_HISTORICAL_DATA)[0][17] == "2 Y"
    assert got["date"].min() == source["date"].min()  # all the fake has, nothing before start
    assert got["date"].max() == pd.Timestamp(END)


def test_ibkr_when_gateway_refuses_other_error_then_provider_error(gateway: FakeIBGateway) -> None:
    @gateway.handler(IN.REQ_HISTORICAL_DATA)
    def refuse(conn, fields):
        conn.error(int(fields[1]), 354, "Requested market data is not subscribed")

    with pytest.raises(ProviderError, match="354"):
        IbkrProvider(port=gateway.port).bars(START, END, ["SYN001"])


def test_ibkr_when_no_gateway_listening_then_unavailable_error_naming_address() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ProviderUnavailableError, match=f"127.0.0.1:{port}"):
        IbkrProvider(port=port, connect_timeout_s=2).bars(START, END, ["SYN001"])


def test_ibkr_when_corporate_actions_asked_then_empty_with_contract_columns() -> None:
    actions = IbkrProvider(["AAA"]).corporate_actions(START, END)
    assert actions.empty
    assert list(actions.columns) == [
        "symbol",
        "ex_date",
        "action_type",
        "split_ratio",
        "dividend_usd",
    ]


def test_ibkr_when_called_after_asyncio_run_or_in_worker_thread_then_still_works(
    gateway: FakeIBGateway,
) -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    provider = IbkrProvider(["SYN001"], port=gateway.port, connect_timeout_s=5)
    asyncio.run(asyncio.sleep(0))  # leaves this thread without a current event loop
    assert not provider.bars(START, END).empty
    with ThreadPoolExecutor(max_workers=1) as pool:  # like a task runner's worker thread
        assert not pool.submit(provider.bars, START, END).result(timeout=30).empty
