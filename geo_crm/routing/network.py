"""Travel costs and route geometry on the stored road network (pgRouting).

The graph is `road_segment` (source/target = `road_vertex.id`), directed: `cost` is the
travel time in seconds along the digitised direction, `reverse_cost` against it, and a
negative `reverse_cost` marks a one-way street (pgRouting convention).

* Coverage: a point is *covered* when it lies inside the convex hull of the road
  vertices and within `max_snap_m` (default 300 m) of a vertex of the network's largest
  strongly connected component (so every covered point can reach every other one).
* Snapping: each point is attached to its nearest vertex of that component (KNN over
  the GiST index on `road_vertex.geom`); the straight "access" leg from the point to
  the vertex is added to the matrices (metres; seconds at `access_speed_kmh`).
* Matrix: one `pgr_dijkstraCostMatrix` over the snapped vertices. To get the *time* of
  the fastest path and the *length of that same path* from one run, each edge's cost is
  the exact integer ``round(10·seconds)·K + round(10·metres)`` (K = 10⁹): the
  agg_cost of a path decodes to (deciseconds, decimetres). Paths are therefore fastest
  paths (ties broken by length), and all integers stay below 2⁵³ (exact in float8).
* Geometry: `pgr_dijkstra` over the legs actually driven (one call with a combinations
  query), edge geometries oriented in travel direction and joined with ST_MakeLine.

All coordinates are EPSG:4326 lon/lat; distances metres, durations seconds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import Connection

from .problem import UNREACHABLE

#: Multiplier separating deciseconds from decimetres in the composite edge cost.
_K = 10**9
DEFAULT_MAX_SNAP_M = 300.0
DEFAULT_ACCESS_SPEED_KMH = 15.0

EDGES_SQL = "SELECT id, source, target, cost, reverse_cost FROM road_segment"
_COMPOSITE_EDGES_SQL = (
    "SELECT id, source, target, "
    f"CASE WHEN cost < 0 THEN -1 ELSE round(cost * 10) * {_K} + round(length_m * 10) END AS cost, "
    f"CASE WHEN reverse_cost < 0 THEN -1 ELSE round(reverse_cost * 10) * {_K} + round(length_m * 10) END "
    "AS reverse_cost FROM road_segment")


class NetworkError(RuntimeError):
    """The road network is missing or unusable."""


@dataclass
class Snap:
    """Where a point joins the network: a vertex id and the access distance (metres)."""
    vertex: int | None
    distance_m: float | None
    covered: bool


def _conn(session_or_conn) -> Connection:
    return session_or_conn.connection() if hasattr(session_or_conn, "connection") and \
        not isinstance(session_or_conn, Connection) else session_or_conn


def network_size(conn) -> int:
    return int(_conn(conn).execute(text("SELECT count(*) FROM road_segment")).scalar_one())


def _prepare_component(conn: Connection) -> int:
    """Fill the temp table `_rt_comp(id)` with the vertices of the largest strongly
    connected component; returns its size (0 when there is no network)."""
    conn.execute(text("CREATE TEMP TABLE IF NOT EXISTS _rt_comp (id bigint PRIMARY KEY) ON COMMIT DROP"))
    conn.execute(text("TRUNCATE _rt_comp"))
    if not conn.execute(text("SELECT EXISTS (SELECT 1 FROM road_segment)")).scalar_one():
        return 0
    return conn.execute(text("""
        INSERT INTO _rt_comp (id)
        SELECT node FROM pgr_strongComponents(:sql) c
         WHERE component = (SELECT component FROM pgr_strongComponents(:sql)
                             GROUP BY component ORDER BY count(*) DESC, component LIMIT 1)
    """), {"sql": EDGES_SQL}).rowcount


def snap_points(conn, lonlats: list[tuple[float, float]], *, max_snap_m: float = DEFAULT_MAX_SNAP_M) -> list[Snap]:
    """Snap EPSG:4326 points to the nearest vertex of the largest strongly connected
    component; `covered` tells whether the point is inside the network's coverage."""
    conn = _conn(conn)
    if not lonlats:
        return []
    if _prepare_component(conn) == 0:
        return [Snap(None, None, False) for _ in lonlats]
    conn.execute(text("ANALYZE _rt_comp"))
    rows = conn.execute(text("""
        WITH hull AS (SELECT ST_Buffer(ST_ConvexHull(ST_Collect(geom))::geography, 50)::geometry AS g
                        FROM road_vertex),
             pts AS (SELECT i, ST_SetSRID(ST_MakePoint(x, y), 4326) AS g
                       FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[])) WITH ORDINALITY AS t(x, y, i))
        SELECT p.i, n.id, ST_Distance(p.g::geography, n.geom::geography) AS d,
               ST_Intersects(p.g, (SELECT g FROM hull)) AS inside
          FROM pts p
          CROSS JOIN LATERAL (
              SELECT v.id, v.geom FROM road_vertex v JOIN _rt_comp c ON c.id = v.id
               ORDER BY v.geom <-> p.g LIMIT 1) n
         ORDER BY p.i
    """), {"xs": [float(x) for x, _ in lonlats], "ys": [float(y) for _, y in lonlats]}).all()
    out = []
    for _, vid, d, inside in rows:
        out.append(Snap(int(vid), float(d), bool(inside) and float(d) <= max_snap_m))
    return out


def vertex_matrix(conn, vertices: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Fastest-path (duration_s, distance_m) float matrices between road vertices with
    one `pgr_dijkstraCostMatrix` call; unreachable pairs are `inf`."""
    conn = _conn(conn)
    uniq = sorted(set(int(v) for v in vertices))
    idx = {v: i for i, v in enumerate(uniq)}
    n = len(uniq)
    dur = np.full((n, n), np.inf)
    dist = np.full((n, n), np.inf)
    np.fill_diagonal(dur, 0.0)
    np.fill_diagonal(dist, 0.0)
    if n > 1:
        rows = conn.execute(text(
            "SELECT start_vid, end_vid, agg_cost FROM pgr_dijkstraCostMatrix(:sql, CAST(:v AS bigint[]), true)"),
            {"sql": _COMPOSITE_EDGES_SQL, "v": uniq}).all()
        if rows:
            a = np.array(rows, dtype=np.float64)
            s = np.array([idx[int(v)] for v in a[:, 0]])
            t = np.array([idx[int(v)] for v in a[:, 1]])
            agg = a[:, 2]
            ds = np.floor(agg / _K)
            dm = agg - ds * _K
            dur[s, t] = ds / 10.0
            dist[s, t] = dm / 10.0
    pos = np.array([idx[int(v)] for v in vertices], dtype=int)
    return dur[np.ix_(pos, pos)], dist[np.ix_(pos, pos)]


def travel_matrices(conn, snaps: list[Snap], *, access_speed_kmh: float = DEFAULT_ACCESS_SPEED_KMH
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Integer (distance_m, duration_s) matrices between snapped points, access legs
    included; entries with no path are `UNREACHABLE`."""
    n = len(snaps)
    if any(s.vertex is None for s in snaps):
        raise NetworkError("every point must be snapped to the network")
    dur, dist = vertex_matrix(conn, [s.vertex for s in snaps])
    acc_m = np.array([s.distance_m for s in snaps], dtype=float)
    acc_s = acc_m / (access_speed_kmh / 3.6)
    dist = dist + acc_m[:, None] + acc_m[None, :]
    dur = dur + acc_s[:, None] + acc_s[None, :]
    bad = ~np.isfinite(dist) | ~np.isfinite(dur)
    dist_i = np.where(bad, UNREACHABLE, np.rint(np.where(bad, 0, dist))).astype(np.int64)
    dur_i = np.where(bad, UNREACHABLE, np.rint(np.where(bad, 0, dur))).astype(np.int64)
    np.fill_diagonal(dist_i, 0)
    np.fill_diagonal(dur_i, 0)
    assert dist_i.shape == (n, n)
    return dist_i, dur_i


def leg_geometries(conn, legs: list[tuple[int, int]]) -> dict[tuple[int, int], dict]:
    """Road geometry of vertex-to-vertex legs: {(a, b): {"wkt": LINESTRING or None,
    "distance_m", "duration_s"}} following the fastest path, edges oriented in travel
    direction. Legs with a == b or no path get wkt None."""
    conn = _conn(conn)
    pairs = sorted({(int(a), int(b)) for a, b in legs if a != b})
    out: dict[tuple[int, int], dict] = {(int(a), int(b)): {"wkt": None, "distance_m": 0.0, "duration_s": 0.0}
                                         for a, b in legs}
    if not pairs:
        return out
    rows = conn.execute(text("""
        WITH p AS (
            SELECT start_vid, end_vid, path_seq, node, edge
              FROM pgr_dijkstra(:sql, 'SELECT s AS source, t AS target FROM _rt_legs', true)),
        e AS (
            SELECT p.start_vid, p.end_vid, p.path_seq, r.length_m,
                   CASE WHEN p.node = r.source THEN r.cost ELSE r.reverse_cost END AS secs,
                   CASE WHEN p.node = r.source THEN r.geom ELSE ST_Reverse(r.geom) END AS g
              FROM p JOIN road_segment r ON r.id = p.edge)
        SELECT start_vid, end_vid, ST_AsText(ST_LineMerge(ST_MakeLine(g ORDER BY path_seq))),
               sum(length_m), sum(secs)
          FROM e GROUP BY start_vid, end_vid
    """).bindparams(sql=_COMPOSITE_EDGES_SQL), _legs_param(conn, pairs)).all()
    for a, b, wkt, m, s in rows:
        out[(int(a), int(b))] = {"wkt": wkt, "distance_m": float(m), "duration_s": float(s)}
    return out


def _legs_param(conn: Connection, pairs: list[tuple[int, int]]) -> dict:
    conn.execute(text("CREATE TEMP TABLE IF NOT EXISTS _rt_legs (s bigint, t bigint) ON COMMIT DROP"))
    conn.execute(text("TRUNCATE _rt_legs"))
    conn.execute(text("INSERT INTO _rt_legs (s, t) SELECT * FROM unnest(CAST(:s AS bigint[]), CAST(:t AS bigint[]))"),
                 {"s": [a for a, _ in pairs], "t": [b for _, b in pairs]})
    return {}


def dijkstra_cost(conn, a: int, b: int) -> tuple[float, float] | None:
    """(seconds, metres) of the fastest path a→b with a direct `pgr_dijkstra` on plain
    second costs (for checks); None when there is no path."""
    row = _conn(conn).execute(text("""
        SELECT max(p.agg_cost) FILTER (WHERE p.edge = -1), sum(r.length_m)
          FROM pgr_dijkstra(:sql, CAST(:a AS bigint), CAST(:b AS bigint), true) p
          LEFT JOIN road_segment r ON r.id = p.edge"""), {"sql": EDGES_SQL, "a": a, "b": b}).one()
    if row[0] is None:
        return None
    return float(row[0]), float(row[1] or 0.0)
