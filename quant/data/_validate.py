"""Checks of tabular market data read from files, naming file, row and column on failure.

Each function takes a table whose cells may still be text (a CSV read with
``dtype=str``) or typed (a parquet file), converts one column and raises
:class:`~quant.exceptions.DataFileError` at the first bad cell, in file
order. ``lines`` maps each row of the table to its 1-based position in the
file (line number for CSV, row number for parquet).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quant.exceptions import DataFileError

__all__ = ["Origin", "check_columns", "dates", "first_bad", "numbers", "texts", "with_optional"]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where the rows of a table come from.

    Attributes
    ----------
    path : str
        The file, as shown in error messages.
    lines : ndarray of shape (n_rows,)
        1-based position of each row in the file.
    row_kind : str
        ``"line"`` (CSV) or ``"row"`` (parquet).
    header_line : int or None
        Line of the header (1 for CSV, ``None`` for parquet).
    """

    path: str
    lines: np.ndarray
    row_kind: str = "line"
    header_line: int | None = 1

    def fail(self, position: int, column: str, problem: str) -> DataFileError:
        """The error for the row at ``position`` (0-based in the table)."""
        return DataFileError(
            self.path, int(self.lines[position]), column, problem, row_kind=self.row_kind
        )


def first_bad(mask: np.ndarray | pd.Series) -> int | None:
    """Position of the first ``True`` in ``mask``, or ``None``."""
    hits = np.flatnonzero(np.asarray(mask, dtype=bool))
    return int(hits[0]) if hits.size else None


def check_columns(frame: pd.DataFrame, required: Sequence[str], origin: Origin) -> None:
    """Raise for the first required column absent from ``frame``."""
    for column in required:
        if column not in frame.columns:
            raise DataFileError(
                origin.path,
                origin.header_line,
                column,
                f"missing column (found: {', '.join(map(str, frame.columns)) or 'none'})",
                row_kind=origin.row_kind,
            )


def with_optional(frame: pd.DataFrame, optional: Sequence[str]) -> pd.DataFrame:
    """``frame`` with each absent ``optional`` column added, blank in every row.

    A blank cell of a text table is ``""`` (a CSV read with ``dtype=str``); of a typed
    one, missing (``NaN``).
    """
    absent = [c for c in optional if c not in frame.columns]
    if not absent:
        return frame
    text = len(frame.columns) == 0 or all(_is_text(frame[c]) for c in frame.columns)
    blank = "" if text else np.nan
    return frame.assign(**dict.fromkeys(absent, blank))


def _is_text(series: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(series) or series.dtype == object


def _blank(series: pd.Series) -> np.ndarray:
    if _is_text(series):
        return series.isna().to_numpy() | (series.astype("str").str.strip() == "").to_numpy()
    return series.isna().to_numpy()


def _cells(
    frame: pd.DataFrame, column: str, origin: Origin, *, required: bool
) -> tuple[pd.Series, np.ndarray]:
    """The column and which of its cells are blank; a blank cell is refused when
    ``required`` (the error names its line)."""
    series = frame[column]
    blank = _blank(series)
    if required:
        bad = first_bad(blank)
        if bad is not None:
            raise origin.fail(bad, column, "missing value")
    return series, blank


def texts(frame: pd.DataFrame, column: str, origin: Origin, *, required: bool = True) -> pd.Series:
    """Stripped text values of ``column``; blank cells are refused when ``required``."""
    series, blank = _cells(frame, column, origin, required=required)
    values = series.astype("str").str.strip()
    return values.where(~blank, "")


def numbers(
    frame: pd.DataFrame,
    column: str,
    origin: Origin,
    *,
    required: bool = True,
    positive: bool = False,
    non_negative: bool = False,
    integer: bool = False,
) -> np.ndarray:
    """Values of ``column`` as float64 (NaN for blank cells when not ``required``)."""
    series, blank = _cells(frame, column, origin, required=required)
    if _is_text(series):
        cleaned = series.astype("str").str.strip().where(~blank, None)
        values = pd.to_numeric(cleaned, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    elif pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        raise DataFileError(
            origin.path,
            origin.header_line,
            column,
            f"not numeric (type {series.dtype})",
            row_kind=origin.row_kind,
        )
    else:
        values = series.to_numpy(dtype="float64", na_value=np.nan)
    unparsable = np.isnan(values) & ~blank
    bad = first_bad(unparsable)
    if bad is not None:
        raise origin.fail(bad, column, f"not a number: {series.iloc[bad]!r}")
    present = ~blank
    bad = first_bad(present & ~np.isfinite(np.where(present, values, 0.0)))
    if bad is not None:
        raise origin.fail(bad, column, f"not a finite number: {series.iloc[bad]!r}")
    if positive:
        bad = first_bad(present & ~(values > 0))
        if bad is not None:
            raise origin.fail(bad, column, f"must be greater than 0, got {series.iloc[bad]!r}")
    if non_negative:
        bad = first_bad(present & ~(values >= 0))
        if bad is not None:
            raise origin.fail(bad, column, f"must not be negative, got {series.iloc[bad]!r}")
    if integer:
        bad = first_bad(present & (np.where(present, values, 0.0) % 1 != 0))
        if bad is not None:
            raise origin.fail(bad, column, f"must be a whole number, got {series.iloc[bad]!r}")
    return values


def dates(frame: pd.DataFrame, column: str, origin: Origin, *, required: bool = True) -> np.ndarray:
    """Values of ``column`` as datetime64[ns] dates (NaT for blank cells when not ``required``).

    Text must be ISO ``YYYY-MM-DD``; typed values must fall at midnight.
    """
    series, blank = _cells(frame, column, origin, required=required)
    if _is_text(series) and not all(
        isinstance(v, pd.Timestamp) or hasattr(v, "isoformat") for v in series[~blank].head(1)
    ):
        cleaned = series.astype("str").str.strip().where(~blank, None)
        parsed = pd.to_datetime(cleaned, format="%Y-%m-%d", errors="coerce")
    else:
        try:
            parsed = pd.to_datetime(series, errors="coerce")
        except (TypeError, ValueError) as exc:
            raise DataFileError(
                origin.path,
                origin.header_line,
                column,
                f"not a date column: {exc}",
                row_kind=origin.row_kind,
            ) from None
        if getattr(parsed.dt, "tz", None) is not None:
            raise DataFileError(
                origin.path,
                origin.header_line,
                column,
                "dates must not carry a time zone",
                row_kind=origin.row_kind,
            )
    values = parsed.to_numpy(dtype="datetime64[ns]")
    unparsable = np.isnat(values) & ~blank
    bad = first_bad(unparsable)
    if bad is not None:
        raise origin.fail(bad, column, f"not a date (YYYY-MM-DD): {series.iloc[bad]!r}")
    midnight = values.astype("datetime64[D]").astype("datetime64[ns]")
    bad = first_bad(~np.isnat(values) & (values != midnight))
    if bad is not None:
        raise origin.fail(bad, column, f"has a time of day: {series.iloc[bad]!r}")
    return values
