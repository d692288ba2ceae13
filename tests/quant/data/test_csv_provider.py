"""Tests of the csv provider: happy path and every malformed case naming file, line and column."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quant.data import (
    ACTION_COLUMNS,
    BAR_COLUMNS,
    BAR_DTYPES,
    SYMBOL_COLUMNS,
    CsvProvider,
    MarketDataProvider,
    SyntheticProvider,
)
from quant.exceptions import ConfigurationError, DataFileError, DataValidationError

HEADER = "date,symbol,open,high,low,close,volume"
GOOD_ROWS = [
    "2024-01-02,AAA,10.0,11.0,9.5,10.5,1000",
    "2024-01-02,BBB,20.0,21.0,19.0,20.5,2000",
    "2024-01-03,AAA,10.5,11.5,10.0,11.0,1100",
    "2024-01-03,BBB,20.5,22.0,20.0,21.0,2100",
]


def _write(folder: Path, name: str, lines: list[str]) -> Path:
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


def _bars_dir(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    _write(tmp_path, "bars.csv", [header, *rows])
    return tmp_path


def test_csv_when_files_well_formed_then_bars_symbols_actions_match_the_files(
    tmp_path: Path,
) -> None:
    _bars_dir(tmp_path, GOOD_ROWS)
    _write(
        tmp_path,
        "symbols.csv",
        [
            "symbol,sector,listed_at,delisted_at",
            "AAA,Energy,2024-01-02,",
            "BBB,Utilities,,2024-01-03",
        ],
    )
    _write(
        tmp_path,
        "corporate_actions.csv",
        [
            "symbol,ex_date,action_type,split_ratio,dividend_usd",
            "AAA,2024-01-03,split,2,",
            "BBB,2024-01-03,dividend,,0.25",
        ],
    )
    provider = CsvProvider(tmp_path)
    assert isinstance(provider, MarketDataProvider)

    bars = provider.bars(date(2024, 1, 1), date(2024, 1, 31))
    assert list(bars.columns) == list(BAR_COLUMNS)
    assert dict(bars.dtypes.astype(str)) == {
        k: str(pd.Series([], dtype=v).dtype) for k, v in BAR_DTYPES.items()
    }
    expected = pd.read_csv(tmp_path / "bars.csv", parse_dates=["date"])
    pd.testing.assert_frame_equal(
        bars.reset_index(drop=True),
        expected.sort_values(["date", "symbol"]).reset_index(drop=True),
        check_dtype=False,
    )
    assert provider.bars(date(2024, 1, 3), date(2024, 1, 3), ["BBB"])["close"].tolist() == [21.0]

    symbols = provider.symbols()
    assert list(symbols.columns) == list(SYMBOL_COLUMNS)
    assert symbols["sector"].tolist() == ["Energy", "Utilities"]
    # blank listed_at falls back to the first bar
    assert symbols.loc[symbols["symbol"] == "BBB", "listed_at"].item() == pd.Timestamp("2024-01-02")
    # point in time: the delisting is unknown before it happens
    early = provider.symbols(as_of=date(2024, 1, 2))
    assert early.loc[early["symbol"] == "BBB", "delisted_at"].isna().all()

    actions = provider.corporate_actions(date(2024, 1, 1), date(2024, 1, 31))
    assert list(actions.columns) == list(ACTION_COLUMNS)
    assert actions.set_index("symbol")["action_type"].to_dict() == {
        "AAA": "split",
        "BBB": "dividend",
    }
    assert actions.set_index("symbol").loc["AAA", "split_ratio"] == 2.0
    assert actions.set_index("symbol").loc["BBB", "dividend_usd"] == 0.25


def test_csv_when_parquet_and_csv_files_then_both_read(tmp_path: Path) -> None:
    _bars_dir(tmp_path, GOOD_ROWS[:2])
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-01-03"]),
            "symbol": ["AAA"],
            "open": [10.5],
            "high": [11.5],
            "low": [10.0],
            "close": [11.0],
            "volume": [1100],
        }
    )
    frame.to_parquet(tmp_path / "bars_2024.parquet")
    bars = CsvProvider(tmp_path).bars(date(2024, 1, 1), date(2024, 1, 31))
    assert len(bars) == 3
    assert bars["date"].max() == pd.Timestamp("2024-01-03")


def test_csv_when_no_symbols_file_then_universe_from_bars_with_unknown_sector(
    tmp_path: Path,
) -> None:
    _bars_dir(tmp_path, GOOD_ROWS)
    symbols = CsvProvider(tmp_path).symbols()
    assert symbols["symbol"].tolist() == ["AAA", "BBB"]
    assert set(symbols["sector"]) == {"Unknown"}
    assert symbols["delisted_at"].isna().all()


def test_csv_when_synthetic_bars_round_trip_then_identical(tmp_path: Path) -> None:
    source = SyntheticProvider(symbols=12, seed=3)
    bars = source.bars(date(2024, 1, 1), date(2024, 6, 30))
    bars.to_csv(tmp_path / "bars.csv", index=False, date_format="%Y-%m-%d")
    got = CsvProvider(tmp_path).bars(date(2024, 1, 1), date(2024, 6, 30))
    pd.testing.assert_frame_equal(got, bars, check_exact=False, rtol=1e-12)


@pytest.mark.parametrize(
    ("rows", "header", "line", "column", "problem"),
    [
        (GOOD_ROWS, "date,symbol,open,high,low,volume", 1, "close", "missing column"),
        (
            [GOOD_ROWS[0], "2024-01-02,BBB,abc,21.0,19.0,20.5,2000"],
            HEADER,
            3,
            "open",
            "not a number",
        ),
        ([GOOD_ROWS[0], "2024/01/03,BBB,20,21.0,19.0,20.5,2000"], HEADER, 3, "date", "not a date"),
        ([GOOD_ROWS[0], "2024-01-02,BBB,20,21.0,19.0,,2000"], HEADER, 3, "close", "missing value"),
        (
            [GOOD_ROWS[0], "2024-01-02,BBB,-20,21.0,19.0,20.5,2000"],
            HEADER,
            3,
            "open",
            "greater than 0",
        ),
        (
            [GOOD_ROWS[0], "2024-01-02,BBB,20,21.0,19.0,0,2000"],
            HEADER,
            3,
            "close",
            "greater than 0",
        ),
        ([GOOD_ROWS[0], "2024-01-02,BBB,20,19.0,21.0,20.5,2000"], HEADER, 3, "high", "below low"),
        ([GOOD_ROWS[0], "2024-01-02,BBB,22,21.0,19.0,20.5,2000"], HEADER, 3, "open", "above high"),
        ([GOOD_ROWS[0], "2024-01-02,BBB,20,21.0,19.0,20.5,-5"], HEADER, 3, "volume", "negative"),
        (
            [GOOD_ROWS[0], "2024-01-02,BBB,20,21.0,19.0,20.5,1.5"],
            HEADER,
            3,
            "volume",
            "whole number",
        ),
        ([GOOD_ROWS[0], "2024-01-02,,20,21.0,19.0,20.5,100"], HEADER, 3, "symbol", "missing value"),
        ([GOOD_ROWS[0], "2024-01-02,BBB,nan,21.0,19.0,20.5,100"], HEADER, 3, "open", "not a"),
        (
            [*GOOD_ROWS[:2], GOOD_ROWS[0].replace("10.5", "10.6")],
            HEADER,
            4,
            "date",
            "duplicate bar for (AAA, 2024-01-02); first at",
        ),
        (
            [GOOD_ROWS[0], "2024-01-06,BBB,20,21.0,19.0,20.5,100"],
            HEADER,
            3,
            "date",
            "not a trading session",
        ),
    ],
)
def test_csv_when_bar_file_malformed_then_error_names_file_line_and_column(
    tmp_path: Path, rows: list[str], header: str, line: int, column: str, problem: str
) -> None:
    _bars_dir(tmp_path, rows, header)
    with pytest.raises(DataFileError) as caught:
        CsvProvider(tmp_path).bars(date(2024, 1, 1), date(2024, 1, 31))
    err = caught.value
    assert isinstance(err, DataValidationError)
    assert (Path(err.path).name, err.row, err.column) == ("bars.csv", line, column)
    message = str(err)
    assert "bars.csv" in message and f"line {line}" in message and repr(column) in message
    assert problem in message


def test_csv_when_blank_line_inside_then_line_numbers_still_match_the_file(tmp_path: Path) -> None:
    _write(tmp_path, "bars.csv", [HEADER, GOOD_ROWS[0], "", "2024-01-02,BBB,20,21.0,19.0,x,2000"])
    with pytest.raises(DataFileError) as caught:
        CsvProvider(tmp_path).validate()
    assert (caught.value.row, caught.value.column) == (4, "close")


def test_csv_when_duplicate_across_files_then_error_names_both_files(tmp_path: Path) -> None:
    _write(tmp_path, "bars_a.csv", [HEADER, GOOD_ROWS[0]])
    _write(tmp_path, "bars_b.csv", [HEADER, GOOD_ROWS[1], GOOD_ROWS[0]])
    with pytest.raises(DataFileError) as caught:
        CsvProvider(tmp_path).validate()
    err = caught.value
    assert (Path(err.path).name, err.row, err.column) == ("bars_b.csv", 3, "date")
    assert "bars_a.csv line 2" in str(err)


def test_csv_when_parquet_malformed_then_error_names_file_row_and_column(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-01-02", "2024-01-03"]),
            "symbol": ["AAA", "AAA"],
            "open": [10.0, 10.0],
            "high": [11.0, 11.0],
            "low": [9.0, 9.0],
            "close": [10.0, np.nan],
            "volume": [100, 100],
        }
    )
    frame.to_parquet(tmp_path / "bars.parquet")
    with pytest.raises(DataFileError) as caught:
        CsvProvider(tmp_path).validate()
    err = caught.value
    assert (Path(err.path).name, err.row, err.column) == ("bars.parquet", 2, "close")
    assert "row 2" in str(err)


def test_csv_when_not_csv_shaped_then_error_names_file_and_line(tmp_path: Path) -> None:
    _write(tmp_path, "bars.csv", [HEADER, GOOD_ROWS[0], GOOD_ROWS[1] + ",extra,fields"])
    with pytest.raises(DataFileError) as caught:
        CsvProvider(tmp_path).validate()
    assert caught.value.row == 3
    assert "bars.csv" in str(caught.value)


@pytest.mark.parametrize(
    ("lines", "line", "column", "problem"),
    [
        (["symbol,listed_at", "AAA,2024-01-02"], 1, "sector", "missing column"),
        (["symbol,sector,listed_at,delisted_at", "AAA,,2024-01-02,"], 2, "sector", "missing value"),
        (
            ["symbol,sector,listed_at,delisted_at", "AAA,Energy,02/01/2024,"],
            2,
            "listed_at",
            "not a date",
        ),
        (
            ["symbol,sector,listed_at,delisted_at", "AAA,Energy,,", "AAA,Utilities,,"],
            3,
            "symbol",
            "listed twice",
        ),
        (
            ["symbol,sector,listed_at,delisted_at", "AAA,Energy,2024-01-03,2024-01-02"],
            2,
            "delisted_at",
            "before listed_at",
        ),
    ],
)
def test_csv_when_symbols_file_malformed_then_error_names_file_line_and_column(
    tmp_path: Path, lines: list[str], line: int, column: str, problem: str
) -> None:
    _bars_dir(tmp_path, GOOD_ROWS)
    _write(tmp_path, "symbols.csv", lines)
    with pytest.raises(DataFileError) as caught:
        CsvProvider(tmp_path).symbols()
    err = caught.value
    assert (Path(err.path).name, err.row, err.column) == ("symbols.csv", line, column)
    assert problem in str(err)


@pytest.mark.parametrize(
    ("row", "column", "problem"),
    [
        ("AAA,2024-01-03,merger,,", "action_type", "split or dividend"),
        ("AAA,2024-01-03,split,,", "split_ratio", "needs split_ratio"),
        ("AAA,2024-01-03,split,0,", "split_ratio", "greater than 0"),
        ("AAA,2024-01-03,dividend,,", "dividend_usd", "needs dividend_usd"),
        ("AAA,2024-01-03,dividend,2,0.5", "split_ratio", "blank"),
        ("AAA,2024-13-03,dividend,,0.5", "ex_date", "not a date"),
    ],
)
def test_csv_when_actions_file_malformed_then_error_names_file_line_and_column(
    tmp_path: Path, row: str, column: str, problem: str
) -> None:
    _bars_dir(tmp_path, GOOD_ROWS)
    _write(
        tmp_path,
        "corporate_actions.csv",
        [
            "symbol,ex_date,action_type,split_ratio,dividend_usd",
            "BBB,2024-01-02,dividend,,0.1",
            row,
        ],
    )
    with pytest.raises(DataFileError) as caught:
        CsvProvider(tmp_path).corporate_actions(date(2024, 1, 1), date(2024, 12, 31))
    err = caught.value
    assert (Path(err.path).name, err.row, err.column) == ("corporate_actions.csv", 3, column)
    assert problem in str(err)


def test_csv_when_folder_missing_or_without_bars_then_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="QUANT_CSV_DIR"):
        CsvProvider(tmp_path / "nope")
    with pytest.raises(ConfigurationError, match="no bars"):
        CsvProvider(tmp_path)
    with pytest.raises(ConfigurationError, match="unset"):
        CsvProvider(None)


def test_csv_when_symbols_file_has_only_symbol_and_sector_then_listed_from_first_bar(
    tmp_path: Path,
) -> None:
    _bars_dir(tmp_path, GOOD_ROWS)
    _write(tmp_path, "symbols.csv", ["symbol,sector", "AAA,Energy", "BBB,Utilities"])
    symbols = CsvProvider(tmp_path).symbols()
    assert symbols["symbol"].tolist() == ["AAA", "BBB"]
    assert symbols["sector"].tolist() == ["Energy", "Utilities"]
    assert symbols["listed_at"].tolist() == [pd.Timestamp("2024-01-02")] * 2
    assert symbols["delisted_at"].isna().all()


def test_csv_when_actions_file_leaves_out_the_other_value_column_then_read(tmp_path: Path) -> None:
    _bars_dir(tmp_path, GOOD_ROWS)
    _write(tmp_path, "corporate_actions.csv",
           ["symbol,ex_date,action_type,split_ratio", "AAA,2024-01-03,split,2"])
    actions = CsvProvider(tmp_path).corporate_actions(date(2024, 1, 1), date(2024, 1, 31))
    assert actions[["symbol", "action_type", "split_ratio"]].values.tolist() == [["AAA", "split", 2.0]]
    assert actions["dividend_usd"].isna().all()
