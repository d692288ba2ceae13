"""Daily bars as a PostgreSQL binary ``COPY`` stream, encoded with numpy (no per-row Python)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["copy_bars", "copy_frame", "encode_bars_binary"]

_PG_EPOCH_DAYS = 10_957
"""Days from 1970-01-01 to 2000-01-01, PostgreSQL's binary date epoch."""

_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_COPY_TRAILER = b"\xff\xff"
_BAR_FIELDS = ("symbol", "date", "provider", "open", "high", "low", "close", "volume")


def encode_bars_binary(bars: pd.DataFrame) -> bytes:
    """Bars as one PostgreSQL binary ``COPY`` stream, built with numpy.

    Parameters
    ----------
    bars : pandas.DataFrame of shape (n_rows, 8)
        :data:`~quant.data.BAR_COLUMNS` plus ``provider``; prices finite,
        ``volume`` integral.

    Returns
    -------
    bytes
        Header, one tuple per row with the fields of ``_BAR_FIELDS`` (text,
        date, text, four float8, int8), trailer.
    """
    return b"".join(_binary_chunks(bars))


_ROW_DTYPE_CACHE: dict[tuple[int, int], np.dtype] = {}


def _row_dtype(ls: int, lp: int) -> np.dtype:
    """Packed big-endian layout of one COPY tuple with a symbol of ``ls`` and provider of ``lp`` bytes."""
    dtype = _ROW_DTYPE_CACHE.get((ls, lp))
    if dtype is None:
        dtype = np.dtype(
            [
                ("nf", ">i2"),
                ("ls", ">i4"),
                ("s", f"S{ls}"),
                ("ld", ">i4"),
                ("d", ">i4"),
                ("lp", ">i4"),
                ("p", f"S{lp}"),
                ("lo", ">i4"),
                ("o", ">f8"),
                ("lh", ">i4"),
                ("h", ">f8"),
                ("ll", ">i4"),
                ("l", ">f8"),
                ("lc", ">i4"),
                ("c", ">f8"),
                ("lv", ">i4"),
                ("v", ">i8"),
            ]
        )
        _ROW_DTYPE_CACHE[(ls, lp)] = dtype
    return dtype


def _binary_chunks(bars: pd.DataFrame, rows_per_chunk: int = 65_536) -> Iterator[bytes]:
    """The binary COPY stream of ``bars`` in pieces, encoded lazily.

    Rows go in (symbol, date) order, so the primary key's btree grows at its
    right edge; they are grouped by the byte lengths of symbol and provider
    (the tuple layout), which COPY does not mind.
    """
    yield _COPY_HEADER
    n = len(bars)
    if n:
        sym_code, sym_values = pd.factorize(bars["symbol"], sort=True)
        prov_code, prov_values = pd.factorize(bars["provider"], sort=True)
        sym_bytes = [str(v).encode("utf-8") for v in sym_values]
        prov_bytes = [str(v).encode("utf-8") for v in prov_values]
        sym_len = np.array([len(b) for b in sym_bytes], dtype=np.int64)[sym_code]
        prov_len = np.array([len(b) for b in prov_bytes], dtype=np.int64)[prov_code]
        days = (
            bars["date"].to_numpy().astype("datetime64[D]").astype(np.int64) - _PG_EPOCH_DAYS
        ).astype(np.int32)
        order = np.lexsort((days, sym_code))
        prices = {c: bars[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close")}
        volume = bars["volume"].to_numpy(dtype=np.int64)
        key = (sym_len * 4096 + prov_len)[order]
        for group in np.unique(key):
            members = order[key == group]
            ls, lp = int(group // 4096), int(group % 4096)
            sym_table = np.array(sym_bytes, dtype=f"S{max(ls, 1)}")
            prov_table = np.array(prov_bytes, dtype=f"S{max(lp, 1)}")
            for lo in range(0, members.size, rows_per_chunk):
                idx = members[lo : lo + rows_per_chunk]
                rows = np.empty(idx.size, dtype=_row_dtype(ls, lp))
                rows["nf"] = len(_BAR_FIELDS)
                rows["ls"], rows["s"] = ls, sym_table[sym_code[idx]]
                rows["ld"], rows["d"] = 4, days[idx]
                rows["lp"], rows["p"] = lp, prov_table[prov_code[idx]]
                for short, column in (("o", "open"), ("h", "high"), ("l", "low"), ("c", "close")):
                    rows["l" + short], rows[short] = 8, prices[column][idx]
                rows["lv"], rows["v"] = 8, volume[idx]
                yield rows.tobytes()
    yield _COPY_TRAILER


class _ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte strings (for ``copy_expert``)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return b""
        if size < 0 or size >= len(self._pending):
            out, self._pending = self._pending, b""
        else:
            out, self._pending = self._pending[:size], self._pending[size:]
        return out


def copy_bars(cur: Any, table: str, bars: pd.DataFrame) -> None:
    """Binary COPY of ``bars`` into ``table``, encoding while the server loads."""
    cur.copy_expert(
        f"copy {table} ({', '.join(_BAR_FIELDS)}) from stdin with (format binary)",
        _ChunkReader(_binary_chunks(bars)),
        size=1 << 22,
    )


def copy_frame(cur: Any, table: str, frame: pd.DataFrame, columns: list[str]) -> None:
    buf = io.StringIO()
    frame[columns].to_csv(buf, index=False, header=False, date_format="%Y-%m-%d")
    buf.seek(0)
    cur.copy_expert(f"copy {table} ({', '.join(columns)}) from stdin with (format csv)", buf)
