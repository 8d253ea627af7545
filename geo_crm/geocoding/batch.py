"""Batch geocoding of customers and loading address gazetteers.

Customers whose location was set by hand (`geocode_quality = 'manual'`) are never
touched. Coordinates are EPSG:4326.
"""
from __future__ import annotations

import csv
import io
from typing import Callable

from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_crm.geocoding.geocoder import geocode
from geo_crm.geocoding.normalise import normalise_street


def customers_to_geocode(session: Session, scope, *, missing_only: bool = True, limit: int | None = None):
    from sqlalchemy import select

    from geo_crm.models import Customer
    stmt = (select(Customer.id, Customer.address, Customer.postcode, Customer.city)
            .where(scope.customer_filter(), Customer.geocode_quality != "manual")
            .order_by(Customer.id))
    if missing_only:
        stmt = stmt.where(Customer.geom.is_(None))
    if limit:
        stmt = stmt.limit(limit)
    return session.execute(stmt).all()


def geocode_customers(session: Session, scope, *, missing_only: bool = True, limit: int | None = None,
                      providers=None, progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Geocode customers (without location by default). Returns counts per quality.
    Membership triggers keep region/territory/branch current for each updated row."""
    rows = customers_to_geocode(session, scope, missing_only=missing_only, limit=limit)
    counts: dict[str, int] = {}
    for i, (cid, address, postcode, city) in enumerate(rows, start=1):
        res = geocode(session, address or "", postcode or "", city or "", providers=providers)
        counts[res.quality] = counts.get(res.quality, 0) + 1
        if res.found:
            session.execute(text(
                "UPDATE customer SET geom = ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), geocode_quality = :q,"
                " version = version + 1, updated_at = now() WHERE id = :id AND geocode_quality <> 'manual'"),
                {"lon": res.lon, "lat": res.lat, "q": res.quality, "id": cid})
        if progress:
            progress(i, len(rows))
    return counts


def load_address_points(conn, points, *, replace: bool = True) -> int:
    """COPY address points (objects with osm_type, osm_id, street, housenumber, postcode,
    city, lon, lat: e.g. `geo_crm.osm.read_address_points`) into `address_point`."""
    if replace:
        conn.execute(text("DELETE FROM address_point"))
    start = conn.execute(text("SELECT coalesce(max(id), 0) FROM address_point")).scalar()
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    n = 0
    for n, a in enumerate(points, start=1):
        w.writerow([start + n, a.osm_type, a.osm_id, a.street, a.housenumber, a.postcode or "", a.city or "",
                    normalise_street(a.street), f"SRID=4326;POINT({a.lon:.7f} {a.lat:.7f})"])
    buf.seek(0)
    with conn.connection.dbapi_connection.cursor() as cur:
        cur.copy_expert("COPY address_point (id, osm_type, osm_id, street, housenumber, postcode, city,"
                        " street_norm, geom) FROM STDIN WITH (FORMAT csv)", buf)
    conn.execute(text("ANALYZE address_point"))
    return n
