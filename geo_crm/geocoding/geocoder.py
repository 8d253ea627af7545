"""Offline forward and reverse geocoding (EPSG:4326 lon/lat, distances in metres).

Forward geocoding falls back step by step and says how good the answer is:

  exact     street (normalised) and house number match exactly
  address   street matched fuzzily (pg_trgm) and the house number exists on it
  street    street found, house number missing/unknown: nearest house number on
            that street, else the centroid of the street's address points
  postcode  centroid of the address points with that postcode
  city      the GeoNames place with that name (largest population first)
  none      not found

A postcode given with the address disambiguates streets of the same name in
different cities. Online providers (see `providers.py`) are consulted only when
configured and only when the offline answer is worse than `street`.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_crm.geocoding.normalise import ParsedAddress, parse_address

QUALITY_ORDER = ("exact", "address", "street", "postcode", "city", "none")
TRGM_MIN_SIMILARITY = 0.45


@dataclass(frozen=True)
class GeocodeResult:
    quality: str                       # one of QUALITY_ORDER
    lon: float | None = None
    lat: float | None = None
    label: str = ""                    # the matched address / place
    source: str = "offline"

    @property
    def found(self) -> bool:
        return self.quality != "none"

    def as_dict(self) -> dict:
        return asdict(self)


NOT_FOUND = GeocodeResult("none")


def better(a: str, b: str) -> bool:
    """True when quality `a` is better than `b`."""
    return QUALITY_ORDER.index(a) < QUALITY_ORDER.index(b)


def _num_int(housenumber: str) -> int | None:
    m = re.match(r"\d+", housenumber or "")
    return int(m.group()) if m else None


def _candidate_streets(session: Session, p: ParsedAddress) -> list[tuple[str, float]]:
    """(street_norm, similarity) best first: the exact normal form, else trigram matches."""
    if not p.street_norm:
        return []
    exact = session.execute(text("SELECT 1 FROM address_point WHERE street_norm = :s LIMIT 1"),
                            {"s": p.street_norm}).first()
    if exact:
        return [(p.street_norm, 1.0)]
    rows = session.execute(text(
        "SELECT street_norm, max(similarity(street_norm, :s)) AS sim FROM address_point"
        " WHERE street_norm % :s GROUP BY street_norm ORDER BY sim DESC, street_norm LIMIT 5"),
        {"s": p.street_norm}).all()
    return [(r[0], float(r[1])) for r in rows if r[1] >= TRGM_MIN_SIMILARITY]


def _street_point(session: Session, street_norm: str, p: ParsedAddress):
    pc_clause = "AND (:pc = '' OR postcode = :pc OR postcode = '')"
    params = {"s": street_norm, "pc": p.postcode, "hn": p.housenumber}
    if p.housenumber:
        row = session.execute(text(
            "SELECT ST_X(geom), ST_Y(geom), street, housenumber, postcode, city FROM address_point"
            f" WHERE street_norm = :s {pc_clause} AND lower(replace(housenumber, ' ', '')) = :hn"
            " ORDER BY (postcode = :pc) DESC, id LIMIT 1"), params).first()
        if row:
            return row, True
        # '12b' not on the street but '12' is (or vice versa): same building number
        n = _num_int(p.housenumber)
        if n is not None:
            row = session.execute(text(
                "SELECT ST_X(geom), ST_Y(geom), street, housenumber, postcode, city FROM address_point"
                f" WHERE street_norm = :s {pc_clause} AND substring(housenumber from '^[0-9]+')::int = :n"
                " ORDER BY (postcode = :pc) DESC, id LIMIT 1"), {**params, "n": n}).first()
            if row:
                return row, True
            # nearest house number on the same side of the street (parity), then any
            row = session.execute(text(
                "SELECT ST_X(geom), ST_Y(geom), street, housenumber, postcode, city FROM address_point"
                f" WHERE street_norm = :s {pc_clause} AND housenumber ~ '^[0-9]+'"
                " ORDER BY (substring(housenumber from '^[0-9]+')::int % 2 = :n % 2) DESC,"
                " abs(substring(housenumber from '^[0-9]+')::int - :n), id LIMIT 1"),
                {**params, "n": n}).first()
            if row:
                return row, False
    row = session.execute(text(
        "SELECT ST_X(c), ST_Y(c), :s, '', '', '' FROM (SELECT ST_Centroid(ST_Collect(geom)) AS c"
        f" FROM address_point WHERE street_norm = :s {pc_clause}) q WHERE c IS NOT NULL"), params).first()
    return (row, False) if row else (None, False)


def geocode_offline(session: Session, address: str, postcode: str = "", city: str = "") -> GeocodeResult:
    p = parse_address(address or "", postcode or "", city or "")
    for street_norm, sim in _candidate_streets(session, p):
        row, number_matched = _street_point(session, street_norm, p)
        if row is None:
            continue
        lon, lat, street, hn, pc, c = row
        if number_matched:
            quality = "exact" if sim >= 1.0 else "address"
        else:
            quality = "street"
        label = " ".join(x for x in (street, hn) if x) + (f", {pc} {c}".rstrip() if pc or c else "")
        return GeocodeResult(quality, float(lon), float(lat), label.strip(", "))
    if p.postcode:
        row = session.execute(text(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Collect(geom)) AS c FROM address_point"
            " WHERE postcode = :pc) q WHERE c IS NOT NULL"), {"pc": p.postcode}).first()
        if row:
            return GeocodeResult("postcode", float(row[0]), float(row[1]), p.postcode)
    if p.city:
        row = session.execute(text(
            "SELECT ST_X(geom), ST_Y(geom), name FROM place"
            " WHERE lower(name) = lower(:c) OR lower(ascii_name) = lower(:c)"
            " ORDER BY population DESC, id LIMIT 1"), {"c": p.city}).first()
        if row:
            return GeocodeResult("city", float(row[0]), float(row[1]), row[2])
    return NOT_FOUND


def geocode(session: Session, address: str, postcode: str = "", city: str = "",
            providers=None) -> GeocodeResult:
    """Best result: offline first; configured online providers when it is worse than `street`."""
    res = geocode_offline(session, address, postcode, city)
    if not better(res.quality, "postcode"):
        from geo_crm.geocoding.providers import configured_providers
        for prov in (providers if providers is not None else configured_providers()):
            online = prov.geocode(session, ", ".join(x for x in (address, postcode, city) if x))
            if online.found and better(online.quality, res.quality):
                return online
    return res


def reverse(session: Session, lon: float, lat: float, max_address_m: float = 250.0) -> dict | None:
    """The nearest address point within `max_address_m` metres (KNN on the GiST index),
    else the nearest GeoNames place. Returns a dict with kind, label, lon, lat, distance_m."""
    pt = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)"
    row = session.execute(text(
        f"SELECT street, housenumber, postcode, city, ST_X(geom), ST_Y(geom),"
        f" ST_Distance(geom::geography, {pt}::geography) FROM"
        f" (SELECT * FROM address_point ORDER BY geom <-> {pt} LIMIT 8) k"
        " ORDER BY 7 LIMIT 1"), {"lon": lon, "lat": lat}).first()
    if row and row[6] <= max_address_m:
        label = f"{row[0]} {row[1]}".strip() + (f", {row[2]} {row[3]}".rstrip() if row[2] or row[3] else "")
        return {"kind": "address", "label": label, "street": row[0], "housenumber": row[1],
                "postcode": row[2], "city": row[3], "lon": row[4], "lat": row[5], "distance_m": round(row[6], 1)}
    row = session.execute(text(
        f"SELECT name, ST_X(geom), ST_Y(geom), ST_Distance(geom::geography, {pt}::geography) FROM"
        f" (SELECT * FROM place ORDER BY geom <-> {pt} LIMIT 8) k ORDER BY 4 LIMIT 1"),
        {"lon": lon, "lat": lat}).first()
    if row:
        return {"kind": "place", "label": row[0], "lon": row[1], "lat": row[2], "distance_m": round(row[3], 1)}
    return None
