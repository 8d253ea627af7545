"""The pgRouting side: snapping and coverage, the matrix against direct pgr_dijkstra,
one-way streets, road-following leg geometry, and `geo-crm roads import`."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np
from sqlalchemy import text

from geo_crm.routing import network
from geo_crm.routing.problem import UNREACHABLE

ROOT = Path(__file__).resolve().parents[1]
PBF = ROOT / "sample_data" / "helsinki.osm.pbf"


def _component_vertices(conn, n: int) -> list[int]:
    network._prepare_component(conn)
    return list(conn.execute(text("SELECT id FROM _rt_comp ORDER BY md5(id::text) LIMIT :n"), {"n": n}).scalars())


def test_snapping_and_coverage(connection):
    hel = connection.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM branch WHERE id = 1")).one()
    tampere = (23.76, 61.50)
    at_sea = (24.95, 60.10)          # south of the extract, in the Gulf of Finland
    snaps = network.snap_points(connection, [tuple(hel), tampere, at_sea])
    assert snaps[0].covered and snaps[0].distance_m < 300
    assert not snaps[1].covered and snaps[1].distance_m > 100_000
    assert not snaps[2].covered
    # the snapped vertex is the nearest vertex of the largest strongly connected component
    nearest = connection.execute(text(
        "SELECT v.id FROM road_vertex v JOIN _rt_comp c USING (id) "
        "ORDER BY ST_Distance(v.geom::geography, ST_SetSRID(ST_MakePoint(:x, :y), 4326)::geography) LIMIT 1"),
        {"x": hel[0], "y": hel[1]}).scalar_one()
    assert snaps[0].vertex == nearest


def test_matrix_matches_direct_pgr_dijkstra(connection):
    verts = _component_vertices(connection, 25)
    dur, dist = network.vertex_matrix(connection, verts)
    assert np.isfinite(dur).all() and np.isfinite(dist).all(), "one strongly connected component"
    rng = np.random.default_rng(3)
    for _ in range(12):
        i, j = (int(x) for x in rng.choice(len(verts), 2, replace=False))
        secs, metres = network.dijkstra_cost(connection, verts[i], verts[j])
        n_edges = connection.execute(text(
            "SELECT count(*) FROM pgr_dijkstra(:sql, CAST(:a AS bigint), CAST(:b AS bigint), true) WHERE edge > 0"),
            {"sql": network.EDGES_SQL, "a": verts[i], "b": verts[j]}).scalar_one()
        # edge times are rounded to 0.1 s in the matrix: at most 0.05 s per edge apart
        assert abs(dur[i, j] - secs) <= 0.05 * n_edges + 1e-6, (dur[i, j], secs)
        assert abs(dist[i, j] - metres) <= max(5.0, 0.02 * metres), (dist[i, j], metres)


def test_one_way_streets_are_respected(connection):
    seg = connection.execute(text("""
        SELECT s.id, s.source, s.target, s.cost FROM road_segment s
          JOIN road_vertex a ON a.id = s.source JOIN road_vertex b ON b.id = s.target
         WHERE s.oneway AND s.reverse_cost < 0 AND s.source <> s.target AND s.length_m > 40
         ORDER BY s.id LIMIT 40""")).all()
    assert seg, "the sample has one-way streets"
    network._prepare_component(connection)
    comp = set(connection.execute(text("SELECT id FROM _rt_comp")).scalars())
    checked = 0
    for sid, a, b, cost in seg:
        if a not in comp or b not in comp:
            continue
        dur, _ = network.vertex_matrix(connection, [a, b])
        fwd, back = dur[0, 1], dur[1, 0]
        assert fwd <= cost + 0.1                       # along the street: at most the segment itself
        assert back > fwd + 1, (sid, fwd, back)        # against it: a detour around the block
        assert network.dijkstra_cost(connection, b, a)[0] > network.dijkstra_cost(connection, a, b)[0]
        checked += 1
        if checked == 3:
            break
    assert checked == 3


def test_travel_matrices_include_access_legs_and_mark_unreachable(connection):
    hel = connection.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM branch WHERE id = 1")).one()
    pts = [tuple(hel), (hel[0] + 0.004, hel[1] + 0.002), (hel[0] - 0.003, hel[1] - 0.001)]
    snaps = network.snap_points(connection, pts)
    dist, dur = network.travel_matrices(connection, snaps)
    vd, vm = network.vertex_matrix(connection, [s.vertex for s in snaps])
    for i in range(3):
        for j in range(3):
            if i != j:
                expect = vm[i, j] + snaps[i].distance_m + snaps[j].distance_m
                assert abs(dist[i, j] - expect) <= 1
                assert 0 < dur[i, j] < UNREACHABLE
    assert (np.diag(dist) == 0).all()


def test_leg_geometry_follows_the_roads_in_travel_direction(connection):
    a, b = _component_vertices(connection, 2)
    geo = network.leg_geometries(connection, [(a, b), (b, a)])
    for (s, t), g in geo.items():
        assert g["wkt"].startswith("LINESTRING")
        ends = connection.execute(text(
            "SELECT ST_Distance(ST_StartPoint(ST_GeomFromText(:w, 4326))::geography, (SELECT geom FROM road_vertex "
            "WHERE id = :s)::geography), ST_Distance(ST_EndPoint(ST_GeomFromText(:w, 4326))::geography, "
            "(SELECT geom FROM road_vertex WHERE id = :t)::geography), "
            "ST_Length(ST_GeomFromText(:w, 4326)::geography)"), {"w": g["wkt"], "s": s, "t": t}).one()
        assert ends[0] < 0.5 and ends[1] < 0.5, "starts at the source vertex, ends at the target"
        assert abs(ends[2] - g["distance_m"]) <= 0.01 * g["distance_m"] + 1
        secs, metres = network.dijkstra_cost(connection, s, t)
        assert abs(g["duration_s"] - secs) <= 0.05 * 200


def test_roads_import_cli_replaces_the_network(connection, monkeypatch):
    """`geo-crm roads import` through click's runner, inside the test's transaction."""
    from click.testing import CliRunner

    import geo_crm.cli as cli_mod
    from geo_crm.routing.cli import roads

    class Eng:
        @contextmanager
        def begin(self):
            sp = connection.begin_nested()
            try:
                yield connection
                sp.commit()
            except BaseException:
                sp.rollback()
                raise

        def dispose(self):
            pass

    monkeypatch.setattr(cli_mod, "_engine", lambda url=None: Eng())
    connection.execute(text("DELETE FROM road_segment WHERE id IN (SELECT id FROM road_segment LIMIT 5)"))
    r = CliRunner().invoke(roads, ["import", str(PBF)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    segs, verts, oneway = connection.execute(text(
        "SELECT (SELECT count(*) FROM road_segment), (SELECT count(*) FROM road_vertex), "
        "(SELECT count(*) FROM road_segment WHERE oneway)")).one()
    assert f"imported {segs:,} segments, {verts:,} vertices, {oneway:,} one-way segments" in r.output
    assert segs > 500 and oneway > 50
    bad = CliRunner().invoke(roads, ["import", str(ROOT / "README.md")])
    assert bad.exit_code != 0
    assert connection.execute(text("SELECT count(*) FROM road_segment")).scalar_one() == segs, "unchanged on error"
    # the imported network routes
    verts = _component_vertices(connection, 5)
    dur, _ = network.vertex_matrix(connection, verts)
    assert np.isfinite(dur).all()


def test_routes_bench_cli_prints_the_final_line(tmp_path):
    """`geo-crm routes bench` solves a VRPLIB file through the app's solver interface."""
    from click.testing import CliRunner

    from geo_crm.routing.cli import routes
    coords = [(0, 0), (0, 10), (10, 0), (0, -10), (-10, 0)]
    vrp = tmp_path / "tiny.vrp"
    vrp.write_text("NAME : tiny\nTYPE : CVRP\nDIMENSION : 5\nEDGE_WEIGHT_TYPE : EUC_2D\nCAPACITY : 2\n"
                   "NODE_COORD_SECTION\n" + "".join(f"{i + 1} {x} {y}\n" for i, (x, y) in enumerate(coords)) +
                   "DEMAND_SECTION\n1 0\n2 1\n3 1\n4 1\n5 1\nDEPOT_SECTION\n1\n-1\nEOF\n")
    r = CliRunner().invoke(routes, ["bench", str(vrp), "--time-limit", "1"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    last = r.output.strip().splitlines()[-1]
    # capacity 2: two routes, each visiting two neighbours: 10 + 14 + 10 per route (rounded Euclidean)
    assert last.startswith("cost=68 routes=2 feasible=true time_s="), last
