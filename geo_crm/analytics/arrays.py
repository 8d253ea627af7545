"""Fetch a narrow SELECT as numpy columns (binary COPY), and exact group sums.

Ranking-based figures (ABC classes, Lorenz curve, Gini, medians, RFM quintiles) need
the whole per-customer distribution sorted. Sorting ~1M rows inside PostgreSQL with
window functions and re-scanning CTEs dominated the reports at 1M customers; fetching
a few fixed-width columns with `COPY (SELECT ...) TO STDOUT (FORMAT binary)` costs
~40 bytes a row and parses with one `numpy.frombuffer`, after which the sorts take
milliseconds.

Money travels as integer cents (int8), so sums stay exact; dates as days since
2000-01-01 (PostgreSQL's binary date). Every column must be NOT NULL (coalesce to a
sentinel in SQL): a NULL is reported as an error rather than misparsed.
"""
from __future__ import annotations

import io
from datetime import date, timedelta

import numpy as np
import psycopg2
from sqlalchemy import Select
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

PG_EPOCH = date(2000, 1, 1)
_TYPES = {"int4": (">i4", np.int32), "int8": (">i8", np.int64), "float8": (">f8", np.float64),
          "date": (">i4", np.int32)}
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


def fetch_columns(session: Session, stmt: Select, types: list[tuple[str, str]], *,
                  whole_tables: bool = False) -> dict[str, np.ndarray]:
    """Run `stmt` (its columns in the order of `types`: [(name, pg_type)], pg_type in
    int4/int8/float8/date, matching the SQL types exactly) and return {name: array}.
    Runs on the session's connection, so it sees the session's transaction.

    `whole_tables`: the statement reads every row of its tables (an unfiltered
    population); then merge joins along the customer-id indexes beat building ~1M-row
    hash tables, and the planner is told so for this one statement."""
    compiled = stmt.compile(dialect=postgresql.psycopg2.dialect(), compile_kwargs={"render_postcompile": True})
    raw = session.connection().connection.driver_connection
    buf = io.BytesIO()
    with raw.cursor() as cur:
        sql = cur.mogrify(str(compiled), compiled.params).decode()
        saved = None
        if whole_tables:
            # merge joins along the id indexes (parallel workers stay allowed: they split the
            # outer scan and its per-row expressions; measured faster even on 2 busy cores)
            cur.execute("SELECT current_setting('enable_hashjoin'), set_config('enable_hashjoin', 'off', true)")
            saved = cur.fetchone()[0]
        try:
            cur.copy_expert(f"COPY ({sql}) TO STDOUT (FORMAT binary)", buf)
        except psycopg2.Error as e:
            # the driver's error, wrapped as SQLAlchemy would (a statement timeout here must
            # reach the same handlers as one in any other statement: 422, not a 500)
            raise DBAPIError.instance(sql, None, e, psycopg2.Error) from e
        finally:
            if saved is not None and raw.get_transaction_status() != 3:  # not in a failed transaction
                cur.execute("SELECT set_config('enable_hashjoin', %s, true)", (saved,))
    data = buf.getbuffer()
    if bytes(data[:11]) != _SIGNATURE:
        raise RuntimeError("unexpected COPY binary header")
    ext = int.from_bytes(data[15:19], "big")
    start = 19 + ext
    fields = [("nf", ">i2")]
    for i, (_, t) in enumerate(types):
        fields += [(f"l{i}", ">i4"), (f"v{i}", _TYPES[t][0])]
    dt = np.dtype(fields)
    body = len(data) - start - 2  # trailer: int16 -1
    if body % dt.itemsize:
        raise RuntimeError("COPY rows are not fixed-width (a NULL or a type mismatch)")
    rows = np.frombuffer(data, dtype=dt, count=body // dt.itemsize, offset=start)
    out = {}
    for i, (name, t) in enumerate(types):
        if len(rows) and (rows[f"l{i}"] != np.dtype(_TYPES[t][0]).itemsize).any():
            raise RuntimeError(f"column {name}: NULL or unexpected width in COPY output")
        out[name] = rows[f"v{i}"].astype(_TYPES[t][1])
    return out


def to_date(days: int) -> date:
    """PostgreSQL binary date (days since 2000-01-01) → date."""
    return PG_EPOCH + timedelta(days=int(days))


def from_date(d: date) -> int:
    return (d - PG_EPOCH).days


def group(keys: np.ndarray, *values: np.ndarray, mask: np.ndarray | None = None):
    """(unique keys, counts, [exact sums of each value array]) grouped by `keys`."""
    if mask is not None:
        keys = keys[mask]
        values = tuple(v[mask] for v in values)
    uniq, inv = np.unique(keys, return_inverse=True)
    counts = np.bincount(inv, minlength=len(uniq))
    sums = []
    for v in values:
        acc = np.zeros(len(uniq), dtype=v.dtype)
        np.add.at(acc, inv, v)
        sums.append(acc)
    return uniq, counts, sums


def sorted_unique(a: np.ndarray) -> np.ndarray:
    """np.unique for integer ids by sorting (faster than numpy's hash-based unique here)."""
    s = np.sort(a)
    if len(s) == 0:
        return s
    return s[np.concatenate(([True], s[1:] != s[:-1]))]


def unique_first(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique values, index of the first occurrence of each) of an integer array."""
    order = np.argsort(a, kind="stable")
    s = a[order]
    if len(s) == 0:
        return s, order
    head = np.concatenate(([True], s[1:] != s[:-1]))
    return s[head], order[head]


def sum_at(n: int, pos: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Exact int64 sums of integer `values` into `n` slots at `pos` (bincount is exact
    while every slot's sum stays below 2**53, i.e. ~90 billion EUR in cents)."""
    return np.rint(np.bincount(pos, weights=values, minlength=n)).astype(np.int64)


def percentile_cont(values: np.ndarray, q: float) -> float | None:
    """PostgreSQL percentile_cont(q) WITHIN GROUP (ORDER BY values) on float8, bit for
    bit: first + (second − first) × proportion between the order statistics."""
    n = len(values)
    if n == 0:
        return None
    s = np.sort(values)
    pos = q * (n - 1)
    lo, hi = int(np.floor(pos)), int(np.ceil(pos))
    first = float(s[lo])
    if lo == hi:
        return first
    return first + (float(s[hi]) - first) * (pos - lo)


def cents_to_eur(c) -> float:
    """Exact integer cents → the float nearest the decimal EUR amount."""
    return int(c) / 100
