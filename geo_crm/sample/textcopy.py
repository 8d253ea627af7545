"""Bulk COPY of whole numpy columns in PostgreSQL's text format.

Rows are never built one by one in Python. A column chunk becomes an (n, width) uint8
matrix of its text, padded with NUL bytes: integers as digit arithmetic (`digits`),
dates and timestamps through a small table of the distinct days (`day_text`,
`timestamps_utc`), text as fixed-width UTF-8 (`utf8`), points as hex EWKB
(`ewkb_points`). The matrices of a chunk are laid side by side with tab and newline
columns and the NUL padding is squeezed out in one boolean selection, which leaves
exactly the COPY text. A second thread streams each finished chunk to the server while
the next is formatted (psycopg2's COPY releases the GIL while it sends), so Python
formatting and the server's parsing overlap on two cores.

A column is an array (integers, bytes, text, a byte matrix) or a `lazy()` formatter that
turns a slice of raw values into one when its chunk is due. Values must be in the text
input form of their column; NULL is `\\N` (`null_where`); text from outside (OSM,
GeoNames) goes through `escape()` first.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Mapping

import numpy as np
from numpy.dtypes import StringDType

S = StringDType()
NULL = "\\N"
_TAB, _NL = np.array([[9]], dtype=np.uint8), np.array([[10]], dtype=np.uint8)


# -- byte matrices: a column chunk as an (n, width) uint8 array, NUL-padded; the padding is
# squeezed out when the rows are joined, so no per-value Python string is ever made ---------
def digits(values, pad: int = 0) -> np.ndarray:
    """Non-negative integers as ASCII digits (zero-padded to `pad` digits if given)."""
    v = np.asarray(values, dtype=np.int64)
    if v.size and v.min() < 0:
        return as_matrix(v.astype(S))
    top = int(v.max()) if v.size else 0
    width = max(pad, len(str(top)))
    power = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    out = ((v[:, None] // power) % 10 + 48).astype(np.uint8)
    if not pad:
        out[(v[:, None] < power) & (power > 1)] = 0  # leading zeros
    return out


def fields(*parts) -> np.ndarray:
    """Side-by-side concatenation of byte matrices, arrays and constant bytes/str."""
    mats = [p for p in parts if not isinstance(p, (bytes, str))]
    n = len(mats[0]) if mats else 1
    return np.hstack([np.tile(np.frombuffer(p.encode() if isinstance(p, str) else p, dtype=np.uint8), (n, 1))
                      if isinstance(p, (bytes, str)) else as_matrix(p) for p in parts])


def as_matrix(values) -> np.ndarray:
    """Any column chunk (byte matrix, integers, bytes, text) as an (n, width) uint8 matrix."""
    v = np.asarray(values)
    if v.dtype == np.uint8 and v.ndim == 2:
        return v
    if v.dtype.kind in "iu":
        return digits(v)
    if v.dtype == bool:
        v = np.where(v, b"t", b"f")
    elif v.dtype.kind != "S":
        v = np.strings.encode(v.astype(S), "utf-8")
    v = np.ascontiguousarray(v)
    return v.view(np.uint8).reshape(len(v), v.dtype.itemsize)


def null_where(values, is_null) -> np.ndarray:
    """A column chunk with NULL (\\N) where `is_null`."""
    m = as_matrix(values)
    if m.shape[1] < 2:
        m = np.hstack([m, np.zeros((len(m), 2 - m.shape[1]), dtype=np.uint8)])
    m = m.copy()
    is_null = np.asarray(is_null, dtype=bool)
    m[is_null] = 0
    m[is_null, 0], m[is_null, 1] = ord("\\"), ord("N")
    return m


def day_text(values) -> np.ndarray:
    """datetime64[D] dates as ISO bytes ("2026-11-01"), through a table of the few distinct days."""
    d = np.asarray(values).astype("datetime64[D]").astype(np.int64)
    if d.size == 0:
        return np.zeros((0, 10), dtype=np.uint8)
    lo = int(d.min())
    table = np.arange(lo, int(d.max()) + 1).astype("datetime64[D]").astype("S10")
    return table[d - lo]



def txt(values) -> np.ndarray:
    """Any array (ints, strings, dates) as strings in PostgreSQL text input form."""
    a = np.asarray(values)
    if a.dtype == bool:
        return np.where(a, "t", "f").astype(S)
    if a.dtype.kind == "M":
        return a.astype(str).astype(S)
    return a.astype(S)


def escape(values) -> np.ndarray:
    """Strings from outside (place names, OSM streets) made safe for the text format."""
    a = txt(values)
    for ch, rep in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
        a = np.strings.replace(a, ch, rep)
    return a


def zfill(values, width: int) -> np.ndarray:
    """Non-negative integers zero-padded to `width` digits."""
    return np.strings.zfill(txt(values), width)


def cat(*parts) -> np.ndarray:
    """Element-wise concatenation of string arrays and scalars."""
    out = None
    for p in parts:
        p = p if isinstance(p, str) else txt(p)
        out = p if out is None else np.strings.add(out, p)
    return np.asarray(out).astype(S)


def nullable(values, is_null) -> np.ndarray:
    """`values` as text, NULL where `is_null`."""
    return np.where(is_null, NULL, txt(values)).astype(S)


def cents(amount) -> np.ndarray:
    """Money (EUR) rounded to cents as exact numeric text ("1230e-2" is 12.30): one integer
    conversion instead of formatting a decimal point."""
    c = np.round(np.asarray(amount, dtype=float) * 100).astype(np.int64)
    return fields(digits(c), b"e-2")


class lazy:  # noqa: N801 - reads as a function at the call site
    """A column formatted chunk by chunk: `fn(*(a[chunk] for a in arrays))`."""

    def __init__(self, fn, *arrays) -> None:
        self.fn, self.arrays = fn, arrays

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, s: slice) -> np.ndarray:
        return np.asarray(self.fn(*(a[s] for a in self.arrays)))


def hundredths(c) -> np.ndarray:
    """Integer hundredths (e.g. a rating times 100) as numeric text ("467e-2" is 4.67)."""
    return fields(digits(np.asarray(c, dtype=np.int64)), b"e-2")


def ewkb_points(lon, lat) -> np.ndarray:
    """EPSG:4326 points as hex EWKB, the geometry type's cheapest text input form."""
    lon = np.asarray(lon, dtype="<f8")
    rec = np.empty(lon.size, dtype=[("order", "u1"), ("type", "<u4"), ("srid", "<u4"), ("x", "<f8"), ("y", "<f8")])
    rec["order"], rec["type"], rec["srid"] = 1, 0x20000001, 4326
    rec["x"], rec["y"] = lon, np.asarray(lat, dtype="<f8")
    return np.frombuffer(rec.tobytes().hex().encode("ascii"), dtype="S50")


def timestamps_utc(values) -> np.ndarray:
    """datetime64 values (UTC) as ISO bytes to the second with an explicit offset
    ("2026-11-01T09:00:00+00:00"): the day through a table, the time as digits."""
    t = np.asarray(values).astype("datetime64[s]").astype(np.int64)
    day, sec = np.divmod(t, 86_400)
    return fields(day_text(day.astype("datetime64[D]")), b"T", digits(sec // 3600, 2), b":",
                  digits(sec // 60 % 60, 2), b":", digits(sec % 60, 2), b"+00:00")


def stack(*chunks) -> np.ndarray:
    """Byte matrices (or columns) of different widths one below the other."""
    mats = [as_matrix(c) for c in chunks]
    width = max(m.shape[1] for m in mats)
    return np.vstack([np.pad(m, ((0, 0), (0, width - m.shape[1]))) for m in mats])


def utf8(values) -> np.ndarray:
    """Text as fixed-width UTF-8 bytes (indexing these copies bytes, not Python strings)."""
    return np.strings.encode(np.asarray(values).astype(S), "utf-8")


class _ChunkReader:
    """A file-like object psycopg2's COPY reads from, fed chunk by chunk through a queue."""

    def __init__(self) -> None:
        self.q: queue.Queue[bytes | None] = queue.Queue(maxsize=2)
        self.buf = b""
        self.done = False

    def read(self, size: int = -1) -> bytes:
        while not self.buf and not self.done:
            item = self.q.get()
            if item is None:
                self.done = True
            else:
                self.buf = item
        if size < 0 or size >= len(self.buf):
            out, self.buf = self.buf, b""
        else:
            out, self.buf = self.buf[:size], self.buf[size:]
        return out

    readline = read


def copy_columns(conn, table: str, columns: Mapping[str, np.ndarray], *, freeze: bool = False,
                 chunk: int = 250_000) -> int:
    """COPY equally long text columns (see `txt`) into `table`; returns the row count.
    `freeze`: COPY FREEZE (only for a table truncated earlier in this transaction)."""
    names = list(columns)
    cols = [columns[c] if isinstance(columns[c], lazy) else np.asarray(columns[c]) for c in names]
    n = len(cols[0]) if cols else 0
    if any(len(c) != n for c in cols):
        raise ValueError(f"{table}: columns of different lengths")
    if n == 0:
        return 0
    sql = f"COPY {table} ({', '.join(names)}) FROM STDIN" + (" WITH (FREEZE)" if freeze else "")
    raw = conn.connection.dbapi_connection
    reader = _ChunkReader()
    failure: list[BaseException] = []

    def send() -> None:
        try:
            with raw.cursor() as cur:
                cur.copy_expert(sql, reader, size=1 << 20)
        except BaseException as e:  # re-raised in the caller's thread
            failure.append(e)
            while not reader.done and reader.q.get() is not None:  # unblock the producer
                pass

    t = threading.Thread(target=send, name=f"copy-{table}", daemon=True)
    t.start()
    try:
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            parts = []
            for c in cols:
                parts += [as_matrix(c[start:stop]), _TAB]
            parts[-1] = _NL
            rows = np.hstack([p if p.shape[0] == stop - start else np.repeat(p, stop - start, axis=0)
                              for p in parts])
            data = rows[rows != 0].tobytes()
            if failure:
                break
            reader.q.put(data)
    finally:
        reader.q.put(None)
        t.join()
    if failure:
        raise failure[0]
    return n
