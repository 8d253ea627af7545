"""Foundation: migrations, model constraints, stored area membership, audit, sample
data determinism, and the console commands."""
from __future__ import annotations

import secrets
from datetime import date

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from geo_crm.models import Customer, Region, Territory
from tests.conftest import _with_db


@pytest.fixture()
def scratch_db(database_url):
    """An empty database on the same server, dropped afterwards."""
    name = f"geocrm_scratch_{secrets.token_hex(4)}"
    admin = create_engine(_with_db(database_url, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    yield _with_db(database_url, name)
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _tables(url):
    e = create_engine(url)
    with e.connect() as c:
        rows = c.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars().all()
    e.dispose()
    return set(rows)


def test_migrations_run_up_down_up(scratch_db):
    from alembic import command

    from geo_crm.cli import alembic_config
    cfg = alembic_config(scratch_db)
    command.upgrade(cfg, "head")
    up = _tables(scratch_db)
    assert {"customer", "territory", "region_part", "road_segment", "audit_log", "churn_alert"} <= up
    command.downgrade(cfg, "base")
    assert _tables(scratch_db) - {"spatial_ref_sys", "alembic_version"} == set()
    command.upgrade(cfg, "head")
    assert _tables(scratch_db) == up


def _insert_customer(conn, code, wkt, quality="manual", **extra):
    cols = {"code": code, "name": "Test Oy", "geom": wkt, "geocode_quality": quality, **extra}
    return conn.execute(text(
        f"INSERT INTO customer ({', '.join(cols)}) VALUES ({', '.join(':' + k for k in cols)}) RETURNING id"),
        cols).scalar()


@pytest.mark.parametrize("wkt, problem", [
    ("SRID=4326;POINT(200 60)", "lonlat_range"),
    ("SRID=4326;POINT(24 95)", "lonlat_range|invalid coordinate"),  # the projected column may object first
    ("SRID=3857;POINT(2700000 8400000)", "SRID"),
    ("SRID=4326;LINESTRING(24 60, 25 61)", "Geometry type"),
])
def test_customer_geometry_constraints(connection, wkt, problem):
    with pytest.raises(DBAPIError) as e:
        with connection.begin_nested():
            _insert_customer(connection, f"T{secrets.token_hex(3)}", wkt)
    assert any(p.lower() in str(e.value).lower() for p in problem.split("|"))


def test_geocode_quality_must_match_location(connection):
    with pytest.raises(IntegrityError):
        with connection.begin_nested():
            _insert_customer(connection, "TQ1", None, quality="manual")


def test_invalid_polygon_rejected(connection):
    bowtie = "SRID=4326;MULTIPOLYGON(((24 60, 25 61, 25 60, 24 61, 24 60)))"
    with pytest.raises(IntegrityError) as e:
        with connection.begin_nested():
            connection.execute(text("INSERT INTO territory (name, geom) VALUES ('bad', :g)"), {"g": bowtie})
    assert "geom_valid" in str(e.value)


def test_area_membership_is_stored_and_follows_redraws(connection):
    # a point in Turku (Southwest territory, Varsinais-Suomi)
    cid = _insert_customer(connection, "TMEM1", "SRID=4326;POINT(22.2666 60.4518)")
    row = connection.execute(text(
        "SELECT r.code, c.service_branch_id FROM customer c JOIN region r ON r.id = c.region_id WHERE c.id = :i"),
        {"i": cid}).one()
    assert row.code == "FI-19"
    expected_branch = connection.execute(text(
        "SELECT id FROM branch WHERE ST_Intersects(service_area, ST_SetSRID(ST_MakePoint(22.2666, 60.4518), 4326))"
    )).scalars().all()
    assert row.service_branch_id in expected_branch
    terr = connection.execute(text("SELECT territory_id FROM customer_territory WHERE customer_id = :i"),
                              {"i": cid}).scalars().all()
    truth = connection.execute(text(
        "SELECT id FROM territory WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(22.2666, 60.4518), 4326))")).scalars().all()
    assert sorted(terr) == sorted(truth) and truth
    # redraw: a small new territory around the point; membership appears, then moves with the customer
    tid = connection.execute(text(
        "INSERT INTO territory (name, geom) VALUES ('Turku centre', "
        "ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(22.2666, 60.4518), 4326), 0.01))) RETURNING id")).scalar()
    assert connection.execute(text("SELECT count(*) FROM customer_territory WHERE territory_id = :t"),
                              {"t": tid}).scalar() >= 1
    assert connection.execute(text("SELECT area_km2 FROM territory WHERE id = :t"), {"t": tid}).scalar() > 0.5
    connection.execute(text("UPDATE customer SET geom = 'SRID=4326;POINT(24.94 60.17)' WHERE id = :i"), {"i": cid})
    assert not connection.execute(text(
        "SELECT 1 FROM customer_territory WHERE territory_id = :t AND customer_id = :i"), {"t": tid, "i": cid}).first()
    assert connection.execute(text("SELECT r.code FROM customer c JOIN region r ON r.id = c.region_id "
                                   "WHERE c.id = :i"), {"i": cid}).scalar() == "FI-18"


def test_stored_region_matches_point_in_polygon_for_the_sample(db_session):
    mismatches = db_session.execute(text("""
        SELECT count(*) FROM customer c
         WHERE c.geom IS NOT NULL AND c.region_id IS DISTINCT FROM
               (SELECT r.id FROM region r WHERE ST_Intersects(r.geom, c.geom) ORDER BY r.id LIMIT 1)""")).scalar()
    assert mismatches == 0
    assert db_session.scalar(select(func.count()).select_from(Customer).where(Customer.region_id.is_(None))) == 0


_TRUTH = """
    SELECT c.id,
           (SELECT r.id FROM region r WHERE ST_Intersects(r.geom, c.geom) ORDER BY r.level DESC, r.id LIMIT 1) AS region_id,
           (SELECT b.id FROM branch b WHERE ST_Intersects(b.service_area, c.geom)
             ORDER BY b.geom <-> c.geom, b.id LIMIT 1) AS service_branch_id,
           coalesce((SELECT array_agg(t.id ORDER BY t.id) FROM territory t WHERE ST_Intersects(t.geom, c.geom)),
                    '{}') AS territories
      FROM customer c WHERE c.id = ANY(:ids) ORDER BY c.id"""
_STORED = """
    SELECT c.id, c.region_id, c.service_branch_id,
           coalesce((SELECT array_agg(ct.territory_id ORDER BY ct.territory_id) FROM customer_territory ct
                      WHERE ct.customer_id = c.id), '{}') AS territories
      FROM customer c WHERE c.id = ANY(:ids) ORDER BY c.id"""


def test_membership_refresh_matches_point_in_polygon_truth(connection):
    """crm_refresh_membership() (set-based, 0015) and the per-row triggers give exactly the
    point-in-polygon answer: random points on land and at sea, every vertex of every
    region, service area and territory outline (shared borders: the tie rules decide),
    edge midpoints, points far outside, and a customer without a location."""
    import numpy as np
    rng = np.random.default_rng(11)
    pts = [(float(x), float(y)) for x, y in zip(rng.uniform(19.0, 32.0, 400), rng.uniform(59.0, 70.5, 400))]
    pts += [(10.0, 50.0), (-179.5, -89.0), (31.9, 59.1)]
    pts += [tuple(p) for p in connection.execute(text("""
        WITH outlines AS (SELECT geom FROM region UNION ALL SELECT service_area FROM branch
                          UNION ALL SELECT geom FROM territory),
             rings AS (SELECT (ST_DumpRings((ST_Dump(geom)).geom)).geom AS ring FROM outlines WHERE geom IS NOT NULL),
             segs AS (SELECT ST_PointN(ST_ExteriorRing(ring), i) AS a, ST_PointN(ST_ExteriorRing(ring), i + 1) AS b
                        FROM rings, generate_series(1, ST_NPoints(ST_ExteriorRing(ring)) - 1) i)
        SELECT DISTINCT ST_X(p), ST_Y(p) FROM (
            SELECT a AS p FROM segs
            UNION ALL SELECT ST_LineInterpolatePoint(ST_MakeLine(a, b), 0.5) FROM segs) s""")).all()]
    assert len(pts) > 3000
    rows = [{"code": f"TM{i:05d}", "x": x, "y": y} for i, (x, y) in enumerate(pts)]
    insert = text("INSERT INTO customer (code, name, geom, geocode_quality) "
                  "VALUES (:code, 'Membership Oy', ST_SetSRID(ST_MakePoint(:x, :y), 4326), 'manual') RETURNING id")
    ids = [connection.execute(insert, r).scalar() for r in rows]  # per-row triggers compute membership
    ids.append(connection.execute(text(
        "INSERT INTO customer (code, name, geocode_quality) VALUES ('TMNULL', 'Nowhere Oy', 'none') RETURNING id")
    ).scalar())
    sample_ids = connection.execute(text("SELECT id FROM customer WHERE code NOT LIKE 'TM%'")).scalars().all()
    truth = connection.execute(text(_TRUTH), {"ids": ids}).all()
    assert sum(1 for t in truth if t.region_id is None) > 20          # some points are at sea or abroad
    assert sum(1 for t in truth if t.service_branch_id is not None) > 300
    assert connection.execute(text(_STORED), {"ids": ids}).all() == truth   # per-row triggers

    # scramble the stored membership (bulk mode: no triggers), then refresh set-based
    connection.execute(text("SET LOCAL geo_crm.bulk = 'on'"))
    connection.execute(text("UPDATE customer SET region_id = CASE WHEN id % 3 = 0 THEN NULL ELSE 1 END, "
                            "service_branch_id = CASE WHEN id % 2 = 0 THEN NULL ELSE 2 END WHERE id = ANY(:ids)"),
                       {"ids": ids})
    connection.execute(text("DELETE FROM customer_territory WHERE customer_id = ANY(:ids) AND customer_id % 4 = 0"),
                       {"ids": ids})
    connection.execute(text("INSERT INTO customer_territory (customer_id, territory_id) SELECT id, 5 FROM customer "
                            "WHERE id = ANY(:ids) AND id % 5 = 0 ON CONFLICT DO NOTHING"), {"ids": ids})
    before = connection.execute(text(_STORED), {"ids": sample_ids}).all()
    connection.execute(text("SELECT crm_refresh_membership()"))
    assert connection.execute(text(_STORED), {"ids": ids}).all() == truth
    assert connection.execute(text(_STORED), {"ids": sample_ids}).all() == before  # the sample was right already
    assert connection.execute(text(_TRUTH), {"ids": sample_ids}).all() == before


def test_membership_refresh_uses_the_spatial_indexes(connection):
    """The set-based join (the query inside crm_compute_membership) runs area parts outer
    and reaches the points through their GiST index."""
    connection.execute(text("SELECT crm_compute_membership('customer')"))
    plan = "\n".join(connection.execute(text(
        "EXPLAIN SELECT p.id FROM crm_area_part x JOIN crm_area a USING (layer, area_id) "
        "JOIN customer p ON p.geom && x.box AND ST_Intersects(a.geom, p.geom)")).scalars())
    assert "idx_customer_geom" in plan, plan
    assert connection.execute(text("SELECT count(*) FROM crm_membership")).scalar() == \
        connection.execute(text("SELECT count(*) FROM customer WHERE region_id IS NOT NULL "
                                "OR service_branch_id IS NOT NULL")).scalar()


def test_audit_trigger_records_who_and_what(db_session):
    db_session.execute(text("SELECT set_config('geo_crm.user_id', '1', true), "
                            "set_config('geo_crm.username', 'admin', true)"))
    c = db_session.get(Customer, 2)
    old_name = c.name
    c.name = "Renamed Oy"
    db_session.flush()
    row = db_session.execute(text(
        "SELECT user_id, username, action, old, new FROM audit_log WHERE entity = 'customer' AND entity_id = '2' "
        "ORDER BY id DESC LIMIT 1")).one()
    assert (row.user_id, row.username, row.action) == (1, "admin", "update")
    assert row.old == {"name": old_name} and row.new == {"name": "Renamed Oy"}


def test_regions_are_real_finnish_regions(db_session):
    regions = db_session.execute(select(Region.code, Region.area_km2, Region.population)).all()
    assert len(regions) == 18
    total_km2 = sum(r.area_km2 for r in regions)
    assert 300_000 < total_km2 < 360_000   # Finland's land+inland water ≈ 338,000 km²
    assert all(r.population > 0 for r in regions)
    assert db_session.scalar(select(func.count()).select_from(Territory)) == 5


def _checksum(url) -> dict:
    e = create_engine(url)
    out = {}
    with e.connect() as c:
        for t in ("customer", "contact", "sales_order", "order_line", "opportunity", "service_record", "branch",
                  "partner", "territory", "road_segment", "customer_territory"):
            out[t] = c.execute(text(
                f"SELECT count(*), md5(coalesce(string_agg(md5(x::text), '' ORDER BY x::text), '')) "
                f"FROM (SELECT to_jsonb(t) - 'created_at' - 'updated_at' AS x FROM {t} t) s")).one()
    e.dispose()
    return out


def test_sample_load_is_deterministic_and_idempotent(scratch_db):
    from alembic import command

    from geo_crm.cli import alembic_config
    from geo_crm.sample.loader import load_sample
    command.upgrade(alembic_config(scratch_db), "head")
    e = create_engine(scratch_db)
    kw = dict(customers=150, seed=3, as_of=date(2026, 6, 1), log=lambda m: None)
    first = load_sample(e, **kw)
    a = _checksum(scratch_db)
    second = load_sample(e, **kw)
    b = _checksum(scratch_db)
    assert first == second and a == b
    assert load_sample(e, if_empty=True, **kw) == {}      # --if-empty keeps existing data
    load_sample(e, customers=150, seed=4, as_of=date(2026, 6, 1), log=lambda m: None)
    assert _checksum(scratch_db)["customer"] != a["customer"]
    with e.connect() as c:  # customers on land, inside a region, none without membership
        assert c.execute(text("SELECT count(*) FROM customer WHERE region_id IS NULL")).scalar() == 0
        stale = c.execute(text(
            "SELECT count(*) FROM customer c WHERE status = 'active' AND NOT EXISTS (SELECT 1 FROM sales_order o "
            "WHERE o.customer_id = c.id AND o.order_date > date '2026-06-01' - interval '6 months')")).scalar()
        assert stale >= 1  # a few customers have not ordered for more than six months
    e.dispose()


def test_cli_commands(database_url, monkeypatch):
    from geo_crm.cli import cli
    monkeypatch.setenv("DATABASE_URL", database_url)
    runner = CliRunner()
    r = runner.invoke(cli, ["db", "url"])
    assert r.exit_code == 0 and r.output.strip() == database_url
    r = runner.invoke(cli, ["db", "status"])
    assert r.exit_code == 0 and "DATABASE_URL is set" in r.output
    name = f"cli_{secrets.token_hex(3)}"
    r = runner.invoke(cli, ["users", "create", "--username", name, "--role", "executive", "--password-stdin"],
                      input="a-long-enough-password\n")
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["users", "create", "--username", name + "x", "--role", "wizard", "--password-stdin"],
                      input="a-long-enough-password\n")
    assert r.exit_code != 0 and "unknown role" in r.output
    r = runner.invoke(cli, ["users", "create", "--username", name + "y", "--role", "admin", "--password-stdin"],
                      input="short\n")
    assert r.exit_code != 0 and "at least" in r.output
    r = runner.invoke(cli, ["sample", "load", "--if-empty"])
    assert r.exit_code == 0 and "skipped" in r.output
    r = runner.invoke(cli, ["db", "upgrade"])
    assert r.exit_code == 0


def test_cli_reports_unreachable_database_clearly(monkeypatch, capsys):
    from geo_crm.cli import main
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://nobody:x@127.0.0.1:1/none")
    assert main(["db", "upgrade"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach the database" in err and "Traceback" not in err


def test_app_serves_login_and_health(client):
    r = client.get("/login")
    assert r.status_code == 200 and b"csrf_token" in r.data
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/dashboard").status_code == 302
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.") and "/api/v1/auth/token" in doc["paths"]


def test_audit_of_a_move_shows_the_location_once(db_session):
    c = db_session.get(Customer, 3)
    c.geom = "SRID=4326;POINT(24.95 60.17)"
    db_session.flush()
    row = db_session.execute(text(
        "SELECT new FROM audit_log WHERE entity = 'customer' AND entity_id = '3' ORDER BY id DESC LIMIT 1")).one()
    assert "geom" in row.new and "geom_3067" not in row.new
