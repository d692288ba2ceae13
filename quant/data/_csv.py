"""The ``csv`` provider: daily bars and reference data from files in one folder.

Layout of the folder (``QUANT_CSV_DIR``):

* ``bars*.csv`` and/or ``bars*.parquet`` (any number, read in name order):
  columns ``date, symbol, open, high, low, close, volume``; extra columns
  are ignored. Unadjusted prices in USD per share, volume in shares.
* ``symbols.csv`` (optional): ``symbol, sector, listed_at, delisted_at``;
  the two dates may be blank or their columns absent.
* ``corporate_actions.csv`` (optional): ``symbol, ex_date, action_type,
  split_ratio, dividend_usd``; ``action_type`` is ``split`` (with
  ``split_ratio``, new shares per old share) or ``dividend`` (with
  ``dividend_usd``, cash per share); a file of only splits may leave out
  ``dividend_usd`` and one of only dividends ``split_ratio``.

Every file is checked completely when first read; the first malformed cell
raises :class:`~quant.exceptions.DataFileError` naming the file, the line
(as numbered in the file, header = line 1; parquet: the 1-based row) and
the column.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from quant.data._base import (
    ACTION_COLUMNS,
    ACTION_DTYPES,
    BAR_COLUMNS,
    BAR_DTYPES,
    SYMBOL_COLUMNS,
    SYMBOL_DTYPES,
    empty_frame,
)
from quant.data._validate import (
    Origin,
    check_columns,
    dates,
    first_bad,
    numbers,
    texts,
    with_optional,
)
from quant.exceptions import ConfigurationError, DataFileError, ProviderError

__all__ = ["UNKNOWN_SECTOR", "CsvProvider"]

UNKNOWN_SECTOR = "Unknown"
"""Sector recorded for a symbol without reference data."""

_SYMBOLS_FILE = "symbols.csv"
_ACTIONS_FILE = "corporate_actions.csv"
_ACTION_TYPES = ("split", "dividend")
# columns a file may leave out altogether: absent means blank in every row
_SYMBOL_OPTIONAL = ("listed_at", "delisted_at")
_ACTION_OPTIONAL = ("split_ratio", "dividend_usd")


def _read_csv(path: Path) -> tuple[pd.DataFrame, Origin]:
    try:
        frame = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            encoding="utf-8",
        )
    except pd.errors.EmptyDataError:
        raise DataFileError(str(path), 1, None, "empty file (a header line is required)") from None
    except pd.errors.ParserError as exc:
        found = re.search(r"line (\d+)", str(exc))
        raise DataFileError(
            str(path), int(found.group(1)) if found else None, None, f"not valid CSV: {exc}"
        ) from None
    except UnicodeDecodeError as exc:
        raise DataFileError(str(path), None, None, f"not UTF-8 text: {exc}") from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    lines = np.arange(2, len(frame) + 2)
    blank_row = np.ones(len(frame), dtype=bool)
    for column in frame.columns:
        blank_row &= (frame[column].astype("str").str.strip() == "").to_numpy()
    if blank_row.any():
        frame = frame.loc[~blank_row].reset_index(drop=True)
        lines = lines[~blank_row]
    return frame, Origin(str(path), lines, "line", 1)


def _read_parquet(path: Path) -> tuple[pd.DataFrame, Origin]:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise DataFileError(str(path), None, None, f"not a readable parquet file: {exc}") from None
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    return frame, Origin(str(path), np.arange(1, len(frame) + 1), "row", None)


def _read_bar_file(path: Path, sessions: np.ndarray) -> tuple[pd.DataFrame, Origin]:
    """Read and check one bar file; ``sessions`` are the calendar's sessions (datetime64[ns])."""
    frame, origin = _read_parquet(path) if path.suffix == ".parquet" else _read_csv(path)
    check_columns(frame, BAR_COLUMNS, origin)
    day = dates(frame, "date", origin)
    symbol = texts(frame, "symbol", origin)
    prices = {c: numbers(frame, c, origin, positive=True) for c in ("open", "high", "low", "close")}
    volume = numbers(frame, "volume", origin, non_negative=True, integer=True)

    bad = first_bad(prices["high"] < prices["low"])
    if bad is not None:
        raise origin.fail(
            bad, "high", f"high {prices['high'][bad]} is below low {prices['low'][bad]}"
        )
    for column in ("open", "close"):
        bad = first_bad(prices[column] > prices["high"])
        if bad is not None:
            raise origin.fail(
                bad, column, f"{column} {prices[column][bad]} is above high {prices['high'][bad]}"
            )
        bad = first_bad(prices[column] < prices["low"])
        if bad is not None:
            raise origin.fail(
                bad, column, f"{column} {prices[column][bad]} is below low {prices['low'][bad]}"
            )
    if sessions.size:
        inside = (day >= sessions[0]) & (day <= sessions[-1])
        not_session = inside & ~np.isin(day, sessions)
        bad = first_bad(not_session)
        if bad is not None:
            raise origin.fail(
                bad, "date", f"{str(day[bad])[:10]} is not a trading session of the calendar"
            )
    out = pd.DataFrame(
        {
            "date": day,
            "symbol": symbol.to_numpy(dtype=object),
            **prices,
            "volume": volume.astype(np.int64),
        },
        columns=list(BAR_COLUMNS),
    )
    return out, origin


class CsvProvider:
    """Daily bars, reference data and corporate actions from files in a folder.

    Parameters
    ----------
    directory : path
        The folder (``QUANT_CSV_DIR``); must exist and hold at least one
        ``bars*.csv`` or ``bars*.parquet`` file.
    exchange : str, default "XNYS"
        Calendar the bar dates are checked against: a date inside the
        calendar's range that is not a session is refused.

    Raises
    ------
    ConfigurationError
        If the folder does not exist or holds no bar file.
    DataFileError
        On first use, if a file is malformed (names file, line and column).
    """

    name: str = "csv"
    lists_universe: bool = True

    def __init__(self, directory: str | Path | None = None, exchange: str = "XNYS") -> None:
        if directory is None:
            raise ConfigurationError("QUANT_CSV_DIR: the csv provider needs a folder; it is unset")
        self.directory = Path(directory).expanduser().resolve()
        if not self.directory.is_dir():
            raise ConfigurationError(f"QUANT_CSV_DIR: {self.directory} is not a folder")
        self.bar_files = sorted(
            p
            for p in self.directory.iterdir()
            if p.is_file() and p.name.startswith("bars") and p.suffix in (".csv", ".parquet")
        )
        if not self.bar_files:
            raise ConfigurationError(
                f"QUANT_CSV_DIR: {self.directory} holds no bars*.csv or bars*.parquet file"
            )
        self.exchange = exchange
        self._bars: pd.DataFrame | None = None
        self._symbols: pd.DataFrame | None = None
        self._actions: pd.DataFrame | None = None

    def __repr__(self) -> str:
        return f"CsvProvider({str(self.directory)!r})"

    # ------------------------------------------------------------------ loading

    def _load_bars(self) -> pd.DataFrame:
        if self._bars is not None:
            return self._bars
        from quant.calendar import get_calendar

        cal = get_calendar(self.exchange)
        sessions = np.array(
            cal.sessions(cal.first_session, cal.last_session), dtype="datetime64[D]"
        ).astype("datetime64[ns]")
        frames, where = [], []
        for path in self.bar_files:
            frame, origin = _read_bar_file(path, sessions)
            frames.append(frame)
            where.append((origin, len(frame)))
        bars = pd.concat(frames, ignore_index=True) if frames else empty_frame(BAR_DTYPES)
        dup = bars.duplicated(["symbol", "date"], keep="first").to_numpy()
        bad = first_bad(dup)
        if bad is not None:
            origin, pos = _locate(where, bad)
            key = bars.iloc[bad]
            first = bars.index[(bars["symbol"] == key["symbol"]) & (bars["date"] == key["date"])][0]
            first_origin, first_pos = _locate(where, int(first))
            raise origin.fail(
                pos,
                "date",
                f"duplicate bar for ({key['symbol']}, {str(key['date'])[:10]}); first at "
                f"{first_origin.path} {first_origin.row_kind} {int(first_origin.lines[first_pos])}",
            )
        bars = bars.astype(dict(BAR_DTYPES))
        self._bars = bars.sort_values(["date", "symbol"], kind="stable").reset_index(drop=True)
        return self._bars

    def _load_symbols(self) -> pd.DataFrame | None:
        if self._symbols is not None:
            return self._symbols
        path = self.directory / _SYMBOLS_FILE
        if not path.is_file():
            return None
        frame, origin = _read_csv(path)
        frame = with_optional(frame, _SYMBOL_OPTIONAL)
        check_columns(frame, SYMBOL_COLUMNS, origin)
        symbol = texts(frame, "symbol", origin)
        sector = texts(frame, "sector", origin)
        listed = dates(frame, "listed_at", origin, required=False)
        delisted = dates(frame, "delisted_at", origin, required=False)
        bad = first_bad(symbol.duplicated(keep="first").to_numpy())
        if bad is not None:
            raise origin.fail(bad, "symbol", f"symbol {symbol.iloc[bad]!r} listed twice")
        bad = first_bad(~np.isnat(listed) & ~np.isnat(delisted) & (delisted < listed))
        if bad is not None:
            raise origin.fail(bad, "delisted_at", "delisted_at is before listed_at")
        out = pd.DataFrame(
            {
                "symbol": symbol.to_numpy(dtype=object),
                "sector": sector.to_numpy(dtype=object),
                "listed_at": listed,
                "delisted_at": delisted,
            },
            columns=list(SYMBOL_COLUMNS),
        ).astype(dict(SYMBOL_DTYPES))
        self._symbols = out.sort_values("symbol", kind="stable").reset_index(drop=True)
        return self._symbols

    def _load_actions(self) -> pd.DataFrame:
        if self._actions is not None:
            return self._actions
        path = self.directory / _ACTIONS_FILE
        if not path.is_file():
            self._actions = empty_frame(ACTION_DTYPES)
            return self._actions
        frame, origin = _read_csv(path)
        frame = with_optional(frame, _ACTION_OPTIONAL)
        check_columns(frame, ACTION_COLUMNS, origin)
        symbol = texts(frame, "symbol", origin)
        ex_date = dates(frame, "ex_date", origin)
        kind = texts(frame, "action_type", origin).str.lower()
        bad = first_bad(~kind.isin(_ACTION_TYPES).to_numpy())
        if bad is not None:
            raise origin.fail(
                bad,
                "action_type",
                f"must be split or dividend, got {frame['action_type'].iloc[bad]!r}",
            )
        ratio = numbers(frame, "split_ratio", origin, required=False, positive=True)
        dividend = numbers(frame, "dividend_usd", origin, required=False, positive=True)
        is_split = (kind == "split").to_numpy()
        bad = first_bad(is_split & np.isnan(ratio))
        if bad is not None:
            raise origin.fail(bad, "split_ratio", "a split needs split_ratio")
        bad = first_bad(is_split & ~np.isnan(dividend))
        if bad is not None:
            raise origin.fail(bad, "dividend_usd", "a split must leave dividend_usd blank")
        bad = first_bad(~is_split & np.isnan(dividend))
        if bad is not None:
            raise origin.fail(bad, "dividend_usd", "a dividend needs dividend_usd")
        bad = first_bad(~is_split & ~np.isnan(ratio))
        if bad is not None:
            raise origin.fail(bad, "split_ratio", "a dividend must leave split_ratio blank")
        out = pd.DataFrame(
            {
                "symbol": symbol.to_numpy(dtype=object),
                "ex_date": ex_date,
                "action_type": kind.to_numpy(dtype=object),
                "split_ratio": ratio,
                "dividend_usd": dividend,
            },
            columns=list(ACTION_COLUMNS),
        )
        bad = first_bad(
            out.duplicated(["symbol", "ex_date", "action_type"], keep="first").to_numpy()
        )
        if bad is not None:
            raise origin.fail(bad, "ex_date", "duplicate (symbol, ex_date, action_type)")
        out = out.astype(dict(ACTION_DTYPES))
        self._actions = out.sort_values(["ex_date", "symbol"], kind="stable").reset_index(drop=True)
        return self._actions

    def validate(self) -> None:
        """Read and check every file now (otherwise done on first use)."""
        self._load_bars()
        self._load_symbols()
        self._load_actions()

    # ------------------------------------------------------------------ public API

    def bars(
        self,
        start: date,
        end: date,
        symbols: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Raw daily bars in ``[start, end]``; see :meth:`quant.data.MarketDataProvider.bars`.

        Symbols without rows in the files are absent from the result (a
        failover chain then asks the next provider).
        """
        _check_range(start, end)
        bars = self._load_bars()
        lo, hi = np.datetime64(start, "ns"), np.datetime64(end, "ns")
        keep = (bars["date"] >= lo) & (bars["date"] <= hi)
        if symbols is not None:
            keep &= bars["symbol"].isin(list(symbols))
        return bars.loc[keep].reset_index(drop=True)

    def symbols(self, as_of: date | None = None) -> pd.DataFrame:
        """Reference data; see :meth:`quant.data.MarketDataProvider.symbols`.

        From ``symbols.csv`` when present (a blank ``listed_at`` becomes the
        first bar's date); otherwise every symbol of the bar files with
        sector ``"Unknown"``, listed on its first bar and never delisted.
        """
        bars = self._load_bars()
        first_bar = bars.groupby("symbol", sort=True)["date"].min()
        reference = self._load_symbols()
        if reference is None:
            out = pd.DataFrame(
                {
                    "symbol": first_bar.index.to_numpy(dtype=object),
                    "sector": UNKNOWN_SECTOR,
                    "listed_at": first_bar.to_numpy(),
                    "delisted_at": np.full(
                        len(first_bar), np.datetime64("NaT"), dtype="datetime64[ns]"
                    ),
                },
                columns=list(SYMBOL_COLUMNS),
            )
        else:
            out = reference.copy()
            fill = out["symbol"].map(first_bar)
            out["listed_at"] = out["listed_at"].fillna(fill)
        if as_of is not None:
            cut = np.datetime64(as_of, "ns")
            out = out.loc[out["listed_at"].isna() | (out["listed_at"] <= cut)].copy()
            out["delisted_at"] = out["delisted_at"].where(out["delisted_at"] <= cut)
        return out.astype(dict(SYMBOL_DTYPES)).reset_index(drop=True)

    def corporate_actions(
        self,
        start: date,
        end: date,
        symbols: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Splits and dividends with an ex-date in ``[start, end]`` from ``corporate_actions.csv``."""
        _check_range(start, end)
        actions = self._load_actions()
        lo, hi = np.datetime64(start, "ns"), np.datetime64(end, "ns")
        keep = (actions["ex_date"] >= lo) & (actions["ex_date"] <= hi)
        if symbols is not None:
            keep &= actions["symbol"].isin(list(symbols))
        return actions.loc[keep].reset_index(drop=True)


def _locate(where: list[tuple[Origin, int]], position: int) -> tuple[Origin, int]:
    """The file and the position in it of row ``position`` of the concatenated table."""
    for origin, size in where:
        if position < size:
            return origin, position
        position -= size
    raise IndexError(position)


def _check_range(start: date, end: date) -> None:
    if start > end:
        raise ProviderError(f"start {start} is after end {end}")
