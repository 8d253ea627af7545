"""Storing a road network for pgRouting. Rows come from the OSM reader
(`geo_crm.osm.read_road_segments`) or the committed sample CSV; both carry OSM node
ids as source/target, which are mapped here to compact vertex ids."""
from __future__ import annotations

import csv
import io
from typing import Iterable, Mapping

from sqlalchemy import text
from sqlalchemy.engine import Connection


def _field(seg, name):
    return seg[name] if isinstance(seg, Mapping) else getattr(seg, name)


def store_segments(conn: Connection, segments: Iterable, *, replace: bool = True) -> int:
    """Write segments into `road_segment` and their end points into `road_vertex`.

    Each segment provides osm_way_id, name, highway, source_node, target_node, length_m,
    maxspeed_kmh, cost_s, reverse_cost_s (-1 for one-way), oneway, and either `wkt`
    or `coords` [(lon, lat), ...] in EPSG:4326. Costs are seconds. Returns the count.
    """
    if replace:
        conn.execute(text("TRUNCATE road_segment, road_vertex RESTART IDENTITY"))
    vertex: dict[int, int] = {}
    vrows: list[tuple] = []
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    n = 0
    for seg in segments:
        wkt = _field(seg, "wkt") if (isinstance(seg, Mapping) and "wkt" in seg) or hasattr(seg, "wkt") else None
        if wkt is None:
            coords = _field(seg, "coords")
            wkt = "LINESTRING(" + ", ".join(f"{x:.7f} {y:.7f}" for x, y in coords) + ")"
        ends = []
        for key, pos in (("source_node", 0), ("target_node", -1)):
            osm = int(_field(seg, key))
            if osm not in vertex:
                vertex[osm] = len(vertex) + 1
                inner = wkt[wkt.index("(") + 1: wkt.rindex(")")].split(",")
                x, y = inner[pos].split()
                vrows.append((vertex[osm], osm, f"SRID=4326;POINT({x} {y})"))
            ends.append(vertex[osm])
        oneway = str(_field(seg, "oneway")).lower() in ("true", "1", "t", "yes")
        n += 1
        w.writerow([n, _field(seg, "osm_way_id"), _field(seg, "name") or "", _field(seg, "highway"), ends[0], ends[1],
                    _field(seg, "length_m"), _field(seg, "maxspeed_kmh"), _field(seg, "cost_s"),
                    _field(seg, "reverse_cost_s"), oneway, "SRID=4326;" + wkt])
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cur:
        buf.seek(0)
        cur.copy_expert("COPY road_segment (id, osm_way_id, name, highway, source, target, length_m, maxspeed_kmh, "
                        "cost, reverse_cost, oneway, geom) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buf)
        vb = io.StringIO()
        csv.writer(vb, lineterminator="\n").writerows(vrows)
        vb.seek(0)
        cur.copy_expert("COPY road_vertex (id, osm_node_id, geom) FROM STDIN WITH (FORMAT csv)", vb)
    conn.execute(text("ANALYZE road_segment"))
    return n
