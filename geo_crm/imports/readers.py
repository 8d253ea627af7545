"""Read an input file into a `Table` of text cells (plus point geometries for the
spatial formats, reprojected to EPSG:4326).

Formats: CSV/TXT (delimiter sniffed; UTF-8, UTF-8 with BOM, UTF-16 with BOM, else
charset detection among cp1252/Latin-1/GB18030 (a superset of GBK)), XLSX (openpyxl
read-only; the archive is inspected like any zip first), GeoJSON, GeoPackage and
zipped Shapefile (pyogrio). Row numbers: spreadsheet rows for CSV/XLSX (the header
is row 1), feature numbers (1-based) for the spatial formats.
"""
from __future__ import annotations

import codecs
import csv
import io
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from geo_crm.imports.safety import MAX_ROWS, UnsafeFile, check_size, extract_zip, inspect_zip

FORMATS = ("csv", "xlsx", "geojson", "gpkg", "shpzip")


class ReadError(ValueError):
    """The file cannot be read as the given format."""


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str | None]]
    row_numbers: list[int]
    # spatial formats: per row (lon, lat), None (no geometry) or an error string
    points: list | None = None
    encoding: str | None = None
    delimiter: str | None = None
    crs: str | None = None
    warnings: list[dict] = field(default_factory=list)


def detect_format(path: str | os.PathLike, name: str | None = None) -> str:
    n = (name or str(path)).lower()
    if n.endswith((".csv", ".txt", ".tsv")):
        return "csv"
    if n.endswith((".xlsx", ".xlsm")):
        return "xlsx"
    if n.endswith((".geojson", ".json")):
        return "geojson"
    if n.endswith(".gpkg"):
        return "gpkg"
    if n.endswith((".zip", ".shz", ".shp.zip")):
        return "shpzip"
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(b"SQLite format 3"):
        return "gpkg"
    if head.startswith(b"PK"):
        try:
            names = [i.filename.lower() for i in inspect_zip(path)]
        except UnsafeFile:
            raise
        return "xlsx" if any(x.startswith("xl/") for x in names) else "shpzip"
    if head.lstrip().startswith(b"{"):
        return "geojson"
    return "csv"


def decode_bytes(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """(text, encoding). Strict UTF-8 first, then charset detection."""
    if encoding:
        try:
            return data.decode(encoding), encoding
        except (UnicodeDecodeError, LookupError) as e:
            raise ReadError(f"cannot decode the file as {encoding}: {e}")
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", errors="strict"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    import charset_normalizer
    best = charset_normalizer.from_bytes(
        data, cp_isolation=["cp1252", "latin_1", "iso8859_15", "gb18030"]).best()
    if best is None:
        raise ReadError("cannot detect the text encoding; give it explicitly (e.g. --encoding latin-1)")
    enc = best.encoding
    return data.decode(enc), enc


def read_csv(path, encoding: str | None = None, delimiter: str | None = None) -> Table:
    data = Path(path).read_bytes()
    if b"\x00" in data[:4096] and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ReadError("this is a binary file, not CSV text")
    text, enc = decode_bytes(data, encoding)
    if not text.strip():
        raise ReadError("the file is empty")
    if delimiter is None:
        sample = text[:64 * 1024]
        try:
            delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
        except csv.Error:
            first = sample.splitlines()[0]
            delimiter = max(",;\t|", key=first.count)
    csv.field_size_limit(10 * 1024 * 1024)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        headers = [h.strip() for h in next(reader)]
        rows, numbers = [], []
        for i, r in enumerate(reader, start=2):
            if not any(c.strip() for c in r):
                continue
            if len(rows) >= MAX_ROWS:
                raise UnsafeFile(f"more than {MAX_ROWS} rows")
            rows.append([c if c != "" else None for c in r])
            numbers.append(i)
    except csv.Error as e:
        raise ReadError(f"malformed CSV: {e}")
    return Table(headers, rows, numbers, encoding=enc, delimiter=delimiter)


def _cell(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, float):
        if math.isnan(v):
            return None
        return repr(v) if not v.is_integer() else str(int(v)) if abs(v) < 1e15 else repr(v)
    if hasattr(v, "isoformat"):
        return v.isoformat()
    s = str(v)
    return s if s != "" else None


def read_xlsx(path) -> Table:
    inspect_zip(path)
    import openpyxl
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many types for bad files
        raise ReadError(f"not a readable XLSX workbook: {e.__class__.__name__}")
    try:
        ws = wb.worksheets[0]
        it = ws.iter_rows(values_only=True)
        try:
            headers = [str(h).strip() if h is not None else "" for h in next(it)]
        except StopIteration:
            raise ReadError("the worksheet is empty")
        rows, numbers = [], []
        for i, r in enumerate(it, start=2):
            cells = [_cell(v) for v in r]
            if not any(c is not None and c.strip() for c in cells):
                continue
            if len(rows) >= MAX_ROWS:
                raise UnsafeFile(f"more than {MAX_ROWS} rows")
            rows.append(cells)
            numbers.append(i)
    finally:
        wb.close()
    while headers and headers[-1] == "":
        headers.pop()
    return Table(headers, rows, numbers)


def _read_spatial(path, layer=None) -> Table:
    import pyogrio
    import shapely
    try:
        df = pyogrio.read_dataframe(path, layer=layer)
    except Exception as e:
        raise ReadError(f"cannot read the spatial file: {str(e).splitlines()[0][:200]}")
    if len(df) > MAX_ROWS:
        raise UnsafeFile(f"more than {MAX_ROWS} features")
    warnings = []
    crs = None
    if "geometry" in df and df.crs is not None:
        crs = df.crs.to_string()
        if df.crs.to_epsg() != 4326:
            try:
                df = df.to_crs(4326)
            except Exception as e:
                raise ReadError(f"cannot reproject from {crs} to EPSG:4326: {e}")
    elif "geometry" in df:
        warnings.append({"row": None, "field": "geometry", "problem": "no CRS in the file: assumed EPSG:4326"})
    headers = [str(c) for c in df.columns if c != "geometry"]
    rows, points = [], []
    geoms = df.geometry if "geometry" in df else [None] * len(df)
    for (_, rec), g in zip(df[headers].iterrows(), geoms):
        rows.append([_cell(v) for v in rec.tolist()])
        if g is None or (hasattr(g, "is_empty") and g.is_empty):
            points.append(None)
        elif not shapely.is_valid(g):
            points.append(f"invalid geometry: {shapely.is_valid_reason(g)}")
        elif g.geom_type == "Point":
            points.append((float(g.x), float(g.y)))
        elif g.geom_type == "MultiPoint" and len(g.geoms) == 1:
            points.append((float(g.geoms[0].x), float(g.geoms[0].y)))
        else:
            points.append(f"expected a Point geometry, got {g.geom_type}")
    return Table(headers, rows, list(range(1, len(rows) + 1)), points=points, crs=crs, warnings=warnings)


def read_shpzip(path) -> Table:
    with tempfile.TemporaryDirectory(prefix="geocrm-shp-") as d:
        files = extract_zip(path, d)
        shps = [f for f in files if f.suffix.lower() == ".shp"]
        if len(shps) != 1:
            raise ReadError(f"the archive must hold exactly one .shp file (found {len(shps)})")
        return _read_spatial(shps[0])


def read_file(path, fmt: str | None = None, *, encoding: str | None = None, delimiter: str | None = None,
              name: str | None = None) -> Table:
    """Read any supported file (see the module docstring)."""
    check_size(path)
    fmt = fmt or detect_format(path, name)
    if fmt == "csv":
        return read_csv(path, encoding, delimiter)
    if fmt == "xlsx":
        return read_xlsx(path)
    if fmt in ("geojson", "gpkg"):
        return _read_spatial(path)
    if fmt == "shpzip":
        return read_shpzip(path)
    raise ReadError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
