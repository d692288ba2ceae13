"""Tests of the synthetic market-data provider and the provider factory."""

from __future__ import annotations

import time
from datetime import date, datetime

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quant.data import (
    ACTION_COLUMNS,
    BAR_COLUMNS,
    BAR_DTYPES,
    SYMBOL_COLUMNS,
    MarketDataProvider,
    SyntheticProvider,
    get_provider,
)
from quant.exceptions import ConfigurationError, ProviderError

ORIGIN = date(2015, 1, 2)
HISTORY_END = date(2026, 11, 20)


# --------------------------------------------------------------------------- helpers


def _total_returns(bars: pd.DataFrame, actions: pd.DataFrame) -> pd.DataFrame:
    """Daily total returns (dates x symbols) rebuilt from raw closes and the actions table.

    ``(close[t] * split_ratio[t] + dividend[t]) / close[t-1] - 1``: what a holder of
    one share at ``t-1`` earned, independent of the provider's internals.
    """
    close = bars.pivot(index="date", columns="symbol", values="close")
    splits = actions[actions["action_type"] == "split"]
    dividends = actions[actions["action_type"] == "dividend"]
    ratio = (
        splits.pivot(index="ex_date", columns="symbol", values="split_ratio")
        .reindex(index=close.index, columns=close.columns)
        .fillna(1.0)
    )
    cash = (
        dividends.pivot(index="ex_date", columns="symbol", values="dividend_usd")
        .reindex(index=close.index, columns=close.columns)
        .fillna(0.0)
    )
    return (close * ratio + cash) / close.shift(1) - 1.0


def _lagged_rank_ic(total_returns: pd.DataFrame, horizon: int = 5) -> pd.Series:
    """Per date, cross-sectional Spearman correlation of past and next ``horizon``-day returns."""
    log_returns = np.log1p(total_returns)
    past = log_returns.rolling(horizon).sum()
    future = past.shift(-horizon)
    return past.rank(axis=1).corrwith(future.rank(axis=1), axis=1).dropna()


@pytest.fixture(scope="module")
def default_provider() -> SyntheticProvider:
    return SyntheticProvider()


@pytest.fixture(scope="module")
def default_history(default_provider: SyntheticProvider) -> tuple[pd.DataFrame, pd.DataFrame]:
    bars = default_provider.bars(ORIGIN, HISTORY_END)
    actions = default_provider.corporate_actions(ORIGIN, HISTORY_END)
    return bars, actions


# --------------------------------------------------------------------------- contract


def test_provider_when_built_then_satisfies_protocol() -> None:
    provider = SyntheticProvider(symbols=12)

    assert isinstance(provider, MarketDataProvider)
    assert provider.name == "synthetic"


def test_get_provider_when_synthetic_then_passes_keywords() -> None:
    provider = get_provider("synthetic", symbols=15, seed=3)

    assert isinstance(provider, SyntheticProvider)
    assert len(provider.symbols()) == 15


def test_get_provider_when_unknown_name_then_raises_naming_it() -> None:
    with pytest.raises(ConfigurationError, match="no-such-feed"):
        get_provider("no-such-feed")


def test_get_provider_when_unknown_keyword_then_raises_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="synthetic"):
        get_provider("synthetic", tickers=10)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"symbols": 0}, "symbols"),
        ({"seed": -1}, "seed"),
        ({"signal_strength": 1.5}, "signal_strength"),
        ({"signal_strength": float("nan")}, "signal_strength"),
        ({"exchange": "NOPE"}, "exchange"),
        ({"origin": datetime(2015, 1, 2, 12)}, "origin"),
    ],
)
def test_constructor_when_value_invalid_then_raises_naming_field(
    kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigurationError, match=field):
        SyntheticProvider(**kwargs)  # type: ignore[arg-type]


def test_bars_when_requested_then_columns_dtypes_and_order_match_contract(
    default_history: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    bars, _ = default_history

    assert tuple(bars.columns) == BAR_COLUMNS
    assert {c: str(t) for c, t in bars.dtypes.items()} == dict(BAR_DTYPES)
    assert (bars["date"] == bars["date"].dt.normalize()).all()
    assert bars["date"].dt.tz is None
    assert not bars.duplicated(["date", "symbol"]).any()
    assert bars.equals(bars.sort_values(["date", "symbol"]).reset_index(drop=True))


def test_symbols_and_actions_when_requested_then_columns_match_contract(
    default_provider: SyntheticProvider,
    default_history: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    _, actions = default_history
    symbols = default_provider.symbols()

    assert tuple(symbols.columns) == SYMBOL_COLUMNS
    assert tuple(actions.columns) == ACTION_COLUMNS
    assert str(symbols["listed_at"].dtype) == "datetime64[ns]"
    assert str(actions["ex_date"].dtype) == "datetime64[ns]"
    assert symbols["symbol"].is_unique
    assert symbols["symbol"].str.fullmatch(r"SYN\d{3}").all()
    assert 9 <= symbols["sector"].nunique() <= 11
    assert actions.equals(actions.sort_values(["ex_date", "symbol"]).reset_index(drop=True))


def test_bars_when_range_has_no_session_then_empty_frame_with_contract_dtypes(
    default_provider: SyntheticProvider,
) -> None:
    bars = default_provider.bars(date(2026, 11, 21), date(2026, 11, 22))  # Sat, Sun

    assert bars.empty
    assert {c: str(t) for c, t in bars.dtypes.items()} == dict(BAR_DTYPES)


def test_bars_when_range_reversed_then_raises_provider_error(
    default_provider: SyntheticProvider,
) -> None:
    with pytest.raises(ProviderError, match="after"):
        default_provider.bars(date(2020, 2, 1), date(2020, 1, 1))


def test_bars_when_range_starts_before_origin_then_only_rows_from_origin(
    default_provider: SyntheticProvider,
) -> None:
    early = default_provider.bars(date(2014, 11, 3), date(2015, 1, 9))
    from_origin = default_provider.bars(ORIGIN, date(2015, 1, 9))

    assert early["date"].min() == pd.Timestamp(ORIGIN)
    pd.testing.assert_frame_equal(early, from_origin)
    assert default_provider.bars(date(2014, 1, 2), date(2014, 12, 31)).empty
    assert default_provider.corporate_actions(date(2014, 1, 2), date(2014, 12, 31)).empty


def test_bars_when_datetime_given_then_raises_provider_error(
    default_provider: SyntheticProvider,
) -> None:
    with pytest.raises(ProviderError, match="start"):
        default_provider.bars(datetime(2020, 1, 2), date(2020, 1, 10))  # type: ignore[arg-type]


def test_bars_when_unknown_symbol_then_raises_naming_it(
    default_provider: SyntheticProvider,
) -> None:
    with pytest.raises(ProviderError, match="ZZZ"):
        default_provider.bars(date(2020, 1, 2), date(2020, 1, 10), ["SYN001", "ZZZ"])


def test_bars_when_symbols_filtered_then_equal_to_filtered_full_universe(
    default_provider: SyntheticProvider,
) -> None:
    start, end = date(2025, 5, 1), date(2025, 7, 1)
    wanted = ["SYN040", "SYN002", "SYN017"]

    subset = default_provider.bars(start, end, wanted)
    full = default_provider.bars(start, end)
    expected = full[full["symbol"].isin(wanted)].reset_index(drop=True)

    assert set(subset["symbol"]) == set(wanted)
    pd.testing.assert_frame_equal(subset, expected)


# --------------------------------------------------------------------------- determinism


def test_bars_when_same_seed_then_identical_across_instances() -> None:
    start, end = date(2019, 3, 1), date(2019, 6, 28)

    first = SyntheticProvider(symbols=30, seed=11).bars(start, end)
    second = SyntheticProvider(symbols=30, seed=11).bars(start, end)
    other_seed = SyntheticProvider(symbols=30, seed=12).bars(start, end)

    pd.testing.assert_frame_equal(first, second)
    assert not np.allclose(first["close"], other_seed["close"])


def test_bars_when_range_extended_then_overlap_identical() -> None:
    # The narrow range sits inside one late block; the wide one starts at the
    # origin and runs into future sessions, so generation lengths differ a lot.
    narrow = (date(2021, 6, 1), date(2021, 6, 30))
    wide = (date(2015, 1, 2), date(2028, 3, 31))

    narrow_bars = SyntheticProvider(seed=5).bars(*narrow)
    wide_bars = SyntheticProvider(seed=5).bars(*wide)
    window = wide_bars["date"].between(pd.Timestamp(narrow[0]), pd.Timestamp(narrow[1]))

    assert len(narrow_bars) > 0
    pd.testing.assert_frame_equal(narrow_bars, wide_bars[window].reset_index(drop=True))


def test_bars_when_generated_in_steps_then_equal_to_one_shot() -> None:
    stepped = SyntheticProvider(symbols=20, signal_strength=0.2)
    for end in (date(2015, 1, 5), date(2016, 2, 1), date(2019, 12, 31), date(2031, 1, 15)):
        stepped.bars(date(2015, 1, 2), end)
    one_shot = SyntheticProvider(symbols=20, signal_strength=0.2)
    span = (date(2030, 12, 1), date(2031, 1, 15))

    pd.testing.assert_frame_equal(stepped.bars(*span), one_shot.bars(*span))
    pd.testing.assert_frame_equal(
        stepped.corporate_actions(ORIGIN, span[1]), one_shot.corporate_actions(ORIGIN, span[1])
    )


def test_bars_when_called_twice_then_same_rows(default_provider: SyntheticProvider) -> None:
    first = default_provider.bars(date(2024, 1, 2), date(2024, 3, 1))
    second = default_provider.bars(date(2024, 1, 2), date(2024, 3, 1))

    pd.testing.assert_frame_equal(first, second)


# --------------------------------------------------------------------------- bar shape


def test_bars_when_generated_then_ohlc_consistent(
    default_history: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    bars, _ = default_history
    body_low = bars[["open", "close"]].min(axis=1)
    body_high = bars[["open", "close"]].max(axis=1)

    assert (bars[["open", "high", "low", "close"]] > 0).all().all()
    assert (bars["low"] <= body_low).all()
    assert (bars["high"] >= body_high).all()
    assert (bars["high"] > bars["low"]).mean() > 0.99
    assert (bars["volume"] > 0).all()


def test_bars_when_generated_then_open_gapped_from_previous_close(
    default_history: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    bars, _ = default_history
    close = bars.pivot(index="date", columns="symbol", values="close")
    open_ = bars.pivot(index="date", columns="symbol", values="open")

    gap = np.log(open_ / close.shift(1)).stack().dropna().abs()

    assert (gap > 1e-9).mean() > 0.99
    assert 0.001 < gap.median() < 0.02


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    n_symbols=st.integers(min_value=1, max_value=40),
    strength=st.floats(min_value=0.0, max_value=1.0),
)
def test_bars_when_any_parameters_then_ohlc_consistent_and_positive(
    seed: int, n_symbols: int, strength: float
) -> None:
    provider = SyntheticProvider(symbols=n_symbols, seed=seed, signal_strength=strength)
    bars = provider.bars(date(2015, 1, 2), date(2019, 12, 31))

    assert np.isfinite(bars[["open", "high", "low", "close"]]).all().all()
    assert (bars["low"] > 0).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["volume"] > 0).all()


@pytest.mark.parametrize("exchange", ["XNYS", "XLON"])
def test_bars_when_generated_then_dates_are_exactly_calendar_sessions(exchange: str) -> None:
    start, end = date(2023, 11, 15), date(2025, 1, 15)
    provider = SyntheticProvider(symbols=5, exchange=exchange)

    dates = pd.DatetimeIndex(provider.bars(start, end)["date"].unique())
    calendar = xcals.get_calendar(exchange, start=date(2020, 1, 2), end=date(2026, 1, 2))
    sessions = calendar.sessions_in_range(pd.Timestamp(start), pd.Timestamp(end))

    assert list(dates) == list(sessions.tz_localize(None))


def test_bars_when_generated_then_daily_vol_realistic(
    default_history: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    bars, actions = default_history
    log_returns = np.log1p(_total_returns(bars, actions))

    name_vol = log_returns.std()
    market_vol = log_returns.mean(axis=1).std()

    assert 0.012 <= name_vol.median() <= 0.03
    assert name_vol.min() >= 0.008
    assert name_vol.max() <= 0.045
    assert 0.006 <= market_vol <= 0.016
    assert 0.0 < log_returns.stack().mean() < 0.002  # small positive drift
    assert log_returns.stack().kurt() > 0.5  # fatter tails than normal


def test_bars_when_generated_then_volume_lognormal_and_rises_with_abs_return(
    default_history: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    bars, actions = default_history
    log_returns = np.log1p(_total_returns(bars, actions))
    log_volume = np.log(bars.pivot(index="date", columns="symbol", values="volume"))

    per_name = log_volume.iloc[:250].median()  # first year, before most splits
    corr = log_volume.corrwith(log_returns.abs()).median()

    assert 10**4.5 < np.exp(per_name.min()) and np.exp(per_name.max()) < 10**7.5
    assert corr > 0.1


# --------------------------------------------------------------------------- universe


def test_symbols_when_default_universe_then_one_late_listing_and_one_delisting(
    default_provider: SyntheticProvider,
) -> None:
    symbols = default_provider.symbols()
    late = symbols[symbols["listed_at"] > pd.Timestamp(ORIGIN)]
    gone = symbols[symbols["delisted_at"].notna()]

    assert len(late) == 1 and len(gone) == 1
    assert late["listed_at"].iloc[0].strftime("%Y-%m") in {"2025-05", "2025-06", "2025-07"}
    assert gone["delisted_at"].iloc[0].strftime("%Y-%m") in {"2026-02", "2026-03", "2026-04"}


def test_bars_when_name_lists_or_delists_then_no_bars_outside_listing(
    default_provider: SyntheticProvider,
    default_history: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    bars, actions = default_history
    symbols = default_provider.symbols().set_index("symbol")
    span = bars.groupby("symbol")["date"].agg(["min", "max"])
    last_session = bars["date"].max()

    expected_last = symbols["delisted_at"].fillna(last_session)
    pd.testing.assert_series_equal(span["min"], symbols["listed_at"], check_names=False)
    pd.testing.assert_series_equal(span["max"], expected_last, check_names=False)
    # every listed name has a bar on every session in its listing window
    sessions = bars["date"].drop_duplicates()
    for symbol, row in symbols.iterrows():
        window = sessions.between(row["listed_at"], expected_last[symbol]).sum()
        assert (bars["symbol"] == symbol).sum() == window
    # and corporate actions fall inside the window too
    merged = actions.merge(symbols, left_on="symbol", right_index=True)
    assert (merged["ex_date"] >= merged["listed_at"]).all()
    assert (merged["ex_date"] <= merged["delisted_at"].fillna(last_session)).all()


def test_corporate_actions_when_names_list_and_delist_then_only_inside_listing() -> None:
    provider = SyntheticProvider(symbols=500, seed=2)
    start, end = date(2023, 1, 3), HISTORY_END
    symbols = provider.symbols().set_index("symbol")
    movers = symbols[(symbols["listed_at"] > pd.Timestamp(ORIGIN)) | symbols["delisted_at"].notna()]
    actions = provider.corporate_actions(start, end, list(movers.index))
    bars = provider.bars(start, end, list(movers.index))

    for frame, column in ((actions, "ex_date"), (bars, "date")):
        merged = frame.merge(movers, left_on="symbol", right_index=True)
        assert (merged[column] >= merged["listed_at"]).all()
        assert (merged[column] <= merged["delisted_at"].fillna(pd.Timestamp(end))).all()
    assert len(movers) >= 10
    assert len(actions) > 0


def test_symbols_when_as_of_then_only_knowable_facts(default_provider: SyntheticProvider) -> None:
    full = default_provider.symbols().set_index("symbol")
    late = full.index[full["listed_at"] > pd.Timestamp(ORIGIN)][0]
    gone = full.index[full["delisted_at"].notna()][0]
    listed_at = full.at[late, "listed_at"].date()
    delisted_at = full.at[gone, "delisted_at"].date()

    before_listing = default_provider.symbols(as_of=date(listed_at.year, 1, 2)).set_index("symbol")
    on_listing = default_provider.symbols(as_of=listed_at).set_index("symbol")
    before_delisting = default_provider.symbols(as_of=date(delisted_at.year, 1, 2))
    after_delisting = default_provider.symbols(as_of=date(2026, 11, 20)).set_index("symbol")

    assert late not in before_listing.index
    assert late in on_listing.index
    assert before_delisting.set_index("symbol")["delisted_at"].isna().all()
    assert after_delisting.at[gone, "delisted_at"] == pd.Timestamp(delisted_at)
    assert default_provider.symbols(as_of=date(2014, 6, 2)).empty


# --------------------------------------------------------------------------- actions


def test_corporate_actions_when_default_last_two_years_then_split_and_dividends(
    default_provider: SyntheticProvider,
) -> None:
    actions = default_provider.corporate_actions(date(2024, 11, 1), date(2026, 10, 30))
    splits = actions[actions["action_type"] == "split"]
    dividends = actions[actions["action_type"] == "dividend"]

    assert len(splits) >= 1
    assert len(dividends) >= 10
    assert dividends["symbol"].nunique() >= 5
    assert splits["dividend_usd"].isna().all() and dividends["split_ratio"].isna().all()
    assert (dividends["dividend_usd"] > 0).all()
    assert set(actions["action_type"]) == {"split", "dividend"}


def test_corporate_actions_when_universe_large_then_forward_and_reverse_splits() -> None:
    provider = SyntheticProvider(symbols=300, seed=1)
    actions = provider.corporate_actions(ORIGIN, HISTORY_END)
    ratios = set(actions.loc[actions["action_type"] == "split", "split_ratio"])

    assert ratios <= {0.5, 2.0, 3.0}
    assert {0.5, 2.0} <= ratios


def test_corporate_actions_when_split_then_raw_close_jumps_by_ratio_and_total_return_continuous(
    default_history: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    bars, actions = default_history
    close = bars.pivot(index="date", columns="symbol", values="close")
    raw_gross = close / close.shift(1)
    total = _total_returns(bars, actions)
    splits = actions[actions["action_type"] == "split"]
    assert len(splits) >= 3

    for split in splits.itertuples():
        raw = raw_gross.at[split.ex_date, split.symbol]
        # the raw close moves by about 1/ratio ...
        assert abs(raw * split.split_ratio - 1.0) < 0.25, split
        # ... while the holder's total return that day is an ordinary return
        assert abs(total.at[split.ex_date, split.symbol]) < 0.25, split

    # dividends: the raw price drops, the total return stays ordinary; and
    # without the actions table the history would show the split jumps.
    assert total.abs().max().max() < 0.45
    assert (raw_gross - 1.0).abs().max().max() > 0.45


def test_corporate_actions_when_dividend_then_raw_price_drops_by_dividend(
    default_history: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    bars, actions = default_history
    close = bars.pivot(index="date", columns="symbol", values="close")
    total = _total_returns(bars, actions)
    dividends = actions[actions["action_type"] == "dividend"]
    ex = [(d, s) for d, s in zip(dividends["ex_date"], dividends["symbol"], strict=True)]

    price_only = pd.Series([close.at[d, s] / close.shift(1).at[d, s] - 1.0 for d, s in ex])
    with_dividend = pd.Series([total.at[d, s] for d, s in ex])
    yield_ = dividends["dividend_usd"].to_numpy() / np.array(
        [close.shift(1).at[d, s] for d, s in ex]
    )

    np.testing.assert_allclose(with_dividend - price_only, yield_, rtol=1e-9)
    assert 0.001 < np.median(yield_) < 0.02


# --------------------------------------------------------------------------- signal


@pytest.mark.slow
def test_bars_when_signal_strength_zero_then_no_lagged_rank_correlation() -> None:
    provider = SyntheticProvider(symbols=150, seed=21)
    total = _total_returns(
        provider.bars(ORIGIN, HISTORY_END), provider.corporate_actions(ORIGIN, HISTORY_END)
    )

    ic = _lagged_rank_ic(total)

    assert len(ic) > 2500
    assert abs(ic.mean()) < 0.02


@pytest.mark.slow
def test_bars_when_signal_strength_positive_then_lagged_reversal_measurable() -> None:
    provider = SyntheticProvider(symbols=150, seed=21, signal_strength=0.1)
    bars = provider.bars(ORIGIN, HISTORY_END)
    total = _total_returns(bars, provider.corporate_actions(ORIGIN, HISTORY_END))

    ic = _lagged_rank_ic(total)
    name_vol = np.log1p(total).std()

    assert ic.mean() < -0.05
    assert 0.012 <= name_vol.median() <= 0.03  # the signal does not inflate volatility


# --------------------------------------------------------------------------- scale


@pytest.mark.slow
def test_bars_when_2000_symbols_then_generated_quickly_and_consistently() -> None:
    started = time.perf_counter()
    provider = SyntheticProvider(symbols=2000)
    bars = provider.bars(ORIGIN, HISTORY_END)
    elapsed = time.perf_counter() - started
    symbols = provider.symbols()

    n_sessions = bars["date"].nunique()
    assert n_sessions > 2900
    assert bars["symbol"].nunique() == 2000
    assert symbols["symbol"].iloc[0] == "SYN0001" and symbols["symbol"].iloc[-1] == "SYN2000"
    assert 20 <= (symbols["listed_at"] > pd.Timestamp(ORIGIN)).sum() <= 80
    assert 20 <= symbols["delisted_at"].notna().sum() <= 80
    assert bars[["open", "high", "low", "close"]].notna().all().all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert elapsed < 30.0
