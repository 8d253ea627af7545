"""Row validation: typed, normalised records plus a list of problems, each with the
row number, the field and what is wrong.

Coordinates end up as EPSG:4326 lon/lat. Swapped lat/lon is fixed automatically
only when it is unambiguous for Finland: Finland spans lon 19.0..31.6 and lat
59.5..70.1, and these ranges do not overlap, so a point that is outside Finland as
given but inside it with the two values exchanged is certainly swapped (a warning
says so). Anywhere else a swap cannot be told from a real location and is left
alone; values outside ±90/±180 are errors.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from geo_crm.imports.readers import Table
from geo_crm.imports.schema import ENUM_SYNONYMS, KINDS, LOCATION_REQUIRED

FI_LON = (19.0, 31.6)
FI_LAT = (59.5, 70.1)
# ETRS-TM35FIN (EPSG:3067) easting/northing over Finland
TM35_X = (40_000, 780_000)
TM35_Y = (6_600_000, 7_800_000)
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TRUE = {"1", "true", "yes", "y", "x", "kyllä", "k", "ja", "是", "t"}
FALSE = {"0", "false", "no", "n", "ei", "nej", "否", "f", ""}


@dataclass
class Validated:
    records: list[dict]                 # valid rows ('_row' holds the row number)
    errors: list[dict]                  # {"row", "field", "problem"}
    warnings: list[dict]
    invalid_rows: set[int] = field(default_factory=set)
    present: set[str] = field(default_factory=set)   # fields the file provides


def _in(v, rng):
    return rng[0] <= v <= rng[1]


def _num(s: str) -> float:
    s = s.strip().replace("\u2212", "-").replace(" ", "")
    if s.count(",") == 1 and "." not in s:
        s = s.replace(",", ".")
    v = float(s)
    if not math.isfinite(v):
        raise ValueError
    return v


def _in_finland(lon, lat) -> bool:
    return _in(lon, FI_LON) and _in(lat, FI_LAT)


def check_point(lon: float, lat: float, row: int, errors: list, warnings: list, field_: str = "lat/lon"):
    """The (possibly swapped-back) point, or None after recording an error."""
    if not (math.isfinite(lon) and math.isfinite(lat)):
        errors.append({"row": row, "field": field_, "problem": "coordinates must be finite numbers"})
        return None
    if not _in_finland(lon, lat) and _in_finland(lat, lon):
        warnings.append({"row": row, "field": field_,
                         "problem": f"latitude and longitude were swapped ({lat}, {lon}); fixed"})
        lon, lat = lat, lon
    if not -90 <= lat <= 90:
        hint = "; latitude and longitude may be swapped" if -90 <= lon <= 90 else ""
        errors.append({"row": row, "field": "lat", "problem": f"latitude {lat} is outside -90..90{hint}"})
        return None
    if not -180 <= lon <= 180:
        errors.append({"row": row, "field": "lon", "problem": f"longitude {lon} is outside -180..180"})
        return None
    return lon, lat


class _Transformer:
    def __init__(self, crs: str):
        from pyproj import Transformer
        self.t = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)

    def __call__(self, x, y):
        return self.t.transform(x, y)


def validate(table: Table, kind: str, mapping: dict[str, str], *, crs: str | None = None,
             lookups: dict | None = None) -> Validated:
    """Validate every row of `table` for import `kind`. `mapping` is {field: header}.
    `lookups`: {"owners": {username: id}, "customer_codes": set} for reference checks."""
    fields = {f.name: f for f in KINDS[kind]}
    lookups = lookups or {}
    errors: list[dict] = []
    warnings: list[dict] = list(table.warnings)
    unknown = [h for h in mapping.values() if h not in table.headers]
    for f, h in mapping.items():
        if f not in fields:
            errors.append({"row": None, "field": f, "problem": f"unknown field for {kind}"})
    for h in unknown:
        errors.append({"row": None, "field": h, "problem": "mapped column not in the file"})
    idx = {f: table.headers.index(h) for f, h in mapping.items() if f in fields and h in table.headers}
    has_points = table.points is not None and any(p is not None for p in table.points)
    missing = [f.name for f in fields.values() if f.required and f.name not in idx]
    if kind in LOCATION_REQUIRED and not has_points and not ({"lon", "lat"} <= idx.keys() or {"x", "y"} <= idx.keys()):
        missing.append("lon/lat")
    for m in missing:
        errors.append({"row": None, "field": m, "problem": "required column is missing"})
    for f in ("lon", "lat", "x", "y"):
        pair = {"lon": "lat", "lat": "lon", "x": "y", "y": "x"}[f]
        if f in idx and pair not in idx:
            errors.append({"row": None, "field": f, "problem": f"{f} given without {pair}"})
    if errors:
        return Validated([], errors, warnings, set(), set(idx))
    transform = _Transformer(crs) if crs and crs.upper() not in ("EPSG:4326", "4326", "WGS84") else None
    tm35 = None
    key = "customer_code" if kind == "contacts" else "code"
    seen: dict[str, int] = {}
    records: list[dict] = []
    invalid: set[int] = set()
    owners = lookups.get("owners")
    codes = lookups.get("customer_codes")
    for i, cells in enumerate(table.rows):
        row = table.row_numbers[i]
        rec: dict = {"_row": row}
        n_err = len(errors)
        for f, j in idx.items():
            spec = fields[f]
            raw = cells[j] if j < len(cells) else None
            v = raw.strip() if isinstance(raw, str) else raw
            if v is None or v == "":
                if spec.required:
                    errors.append({"row": row, "field": f, "problem": "required value is empty"})
                rec[f] = None
                continue
            t = spec.type
            try:
                if t in ("str", "email"):
                    if spec.max_len and len(v) > spec.max_len:
                        raise ValueError(f"longer than {spec.max_len} characters")
                    if "\x00" in v:
                        raise ValueError("contains a NUL character")
                    if t == "email" and not EMAIL_RE.match(v):
                        raise ValueError("not an e-mail address")
                    rec[f] = v
                elif t == "enum":
                    low = v.lower()
                    low = ENUM_SYNONYMS.get(f, {}).get(low, low)
                    if f == "credit_rating":
                        low = v.upper()
                    if low not in spec.choices:
                        raise ValueError(f"must be one of {', '.join(spec.choices)}")
                    rec[f] = low
                elif t == "int":
                    x = _num(v)
                    if not x.is_integer() or x < 0 or x > 2_000_000_000:
                        raise ValueError("must be a whole number ≥ 0")
                    rec[f] = int(x)
                elif t == "decimal":
                    d = Decimal(v.replace(" ", "").replace(",", ".") if v.count(",") == 1 and "." not in v else v.replace(" ", ""))
                    if not d.is_finite() or abs(d) >= Decimal("1e12"):
                        raise ValueError("number out of range")
                    rec[f] = d
                elif t == "bool":
                    low = v.lower()
                    if low not in TRUE | FALSE:
                        raise ValueError("must be yes/no")
                    rec[f] = low in TRUE
                else:  # lon/lat/x/y
                    rec[f] = _num(v)
            except (ValueError, InvalidOperation) as e:
                msg = str(e) if str(e) and not str(e).startswith(("could not", "[<class")) else ""
                errors.append({"row": row, "field": f,
                               "problem": msg or f"not a valid {'number' if t in ('int', 'decimal', 'lon', 'lat', 'x', 'y') else t}"})
        # location
        point = None
        p = table.points[i] if table.points is not None else None
        if isinstance(p, str):
            errors.append({"row": row, "field": "geometry", "problem": p})
        elif p is not None:
            point = check_point(p[0], p[1], row, errors, warnings, "geometry")
        elif rec.get("lon") is not None or rec.get("lat") is not None:
            if rec.get("lon") is None or rec.get("lat") is None:
                errors.append({"row": row, "field": "lon/lat", "problem": "give both longitude and latitude"})
            else:
                lon, lat = rec["lon"], rec["lat"]
                if transform:
                    lon, lat = transform(lon, lat)
                point = check_point(lon, lat, row, errors, warnings)
        elif rec.get("x") is not None or rec.get("y") is not None:
            x, y = rec.get("x"), rec.get("y")
            if x is None or y is None:
                errors.append({"row": row, "field": "x/y", "problem": "give both x and y"})
            else:
                if transform:
                    x, y = transform(x, y)
                elif _in(x, TM35_X) and _in(y, TM35_Y):
                    tm35 = tm35 or _Transformer("EPSG:3067")
                    if not any(w.get("field") == "x/y" and w["row"] is None for w in warnings):
                        warnings.append({"row": None, "field": "x/y",
                                         "problem": "x/y look like ETRS-TM35FIN (EPSG:3067); reprojected to EPSG:4326"})
                    x, y = tm35(x, y)
                point = check_point(x, y, row, errors, warnings, "x/y")
        for f in ("lon", "lat", "x", "y"):
            rec.pop(f, None)
        if point is not None:
            rec["lon"], rec["lat"] = point
        elif kind in LOCATION_REQUIRED and len(errors) == n_err:
            errors.append({"row": row, "field": "lon/lat", "problem": f"{kind} need a location"})
        # references and uniqueness
        k = rec.get(key)
        if kind != "contacts" and k:
            if k in seen:
                errors.append({"row": row, "field": key, "problem": f"duplicate {key} {k!r} (first at row {seen[k]})"})
            else:
                seen[k] = row
        if kind == "contacts" and k and codes is not None and k not in codes:
            errors.append({"row": row, "field": "customer_code", "problem": f"no customer with code {k!r}"})
        if kind == "customers" and rec.get("owner") and owners is not None:
            uid = owners.get(rec["owner"])
            if uid is None:
                errors.append({"row": row, "field": "owner", "problem": f"no active user {rec['owner']!r}"})
            rec["owner_id"] = uid
        if len(errors) > n_err:
            invalid.add(row)
        else:
            records.append(rec)
    return Validated(records, errors, warnings, invalid, set(idx))
