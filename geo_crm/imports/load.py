"""Set-based loading of validated records.

Rows are COPied into a TEMP staging table, then merged with one UPDATE (existing
keys, only when something differs) and one INSERT (new keys) — both set-based.
Customers are written with `geo_crm.bulk = on` (per-row membership and audit
triggers skipped): region and service branch are computed set-based on the staged
points before the merge (so every row is written once), and territory membership
is recomputed afterwards for the customers whose location changed.

A column the file does not provide is left as it is on existing records; an empty
cell in a provided column clears optional text (enum columns keep their value).
Customer locations: a row with coordinates sets the location (`geocode_quality =
'exact'`: the coordinates came with the data); a row without keeps the existing one.
"""
from __future__ import annotations

import csv
import io
from typing import Callable

from sqlalchemy import text
from sqlalchemy.engine import Connection

DUPLICATE_DISTANCE_M = 200
DUPLICATE_NAME_SIMILARITY = 0.5
MAX_DUPLICATE_REPORTS = 1000
GRID_CELL_M = 250          # > DUPLICATE_DISTANCE_M with a margin for sphere vs spheroid

# staging columns per kind: (column, SQL type, target column, default-on-insert SQL or None)
STAGE = {
    "customers": [("code", "text"), ("name", "text"), ("kind", "text"), ("industry", "text"), ("level", "text"),
                  ("status", "text"), ("credit_rating", "text"), ("employees", "integer"),
                  ("annual_revenue_eur", "numeric"), ("address", "text"), ("postcode", "text"), ("city", "text"),
                  ("country", "text"), ("phone", "text"), ("email", "text"), ("website", "text"), ("notes", "text"),
                  ("owner_id", "integer")],
    "contacts": [("customer_code", "text"), ("name", "text"), ("gender", "text"), ("title", "text"),
                 ("office_phone", "text"), ("mobile_phone", "text"), ("email", "text"), ("is_primary", "boolean"),
                 ("notes", "text")],
    "branches": [("code", "text"), ("name", "text"), ("address", "text"), ("postcode", "text"), ("city", "text"),
                 ("phone", "text"), ("email", "text"), ("is_depot", "boolean")],
    "partners": [("code", "text"), ("name", "text"), ("partner_type", "text"), ("credit_level", "text"),
                 ("address", "text"), ("postcode", "text"), ("city", "text"), ("phone", "text"), ("email", "text"),
                 ("commission_pct", "numeric"), ("notes", "text")],
}
TABLE = {"customers": "customer", "contacts": "contact", "branches": "branch", "partners": "partner"}
# NOT NULL columns with a default: an empty cell means '' (text) or the default (enums/bools)
TEXT_DEFAULT_EMPTY = {"address", "postcode", "city", "phone", "email", "website", "notes", "title",
                      "office_phone", "mobile_phone"}
ENUM_DEFAULTS = {"kind": "'company'", "level": "'ordinary'", "status": "'active'", "country": "'FI'",
                 "gender": "'unknown'", "is_primary": "false", "is_depot": "true", "credit_level": "'A'",
                 "commission_pct": "0"}


def _fmt(v):
    if v is None:
        return "\\N"
    if isinstance(v, bool):
        return "t" if v else "f"
    return v


def copy_rows(conn: Connection, table: str, columns: list[str], rows) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for r in rows:
        w.writerow([_fmt(v) for v in r])
    buf.seek(0)
    with conn.connection.dbapi_connection.cursor() as cur:
        cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buf)


def stage(conn: Connection, kind: str, records: list[dict]) -> str:
    """Create and fill the TEMP staging table; returns its name."""
    name = f"imp_{kind}"
    cols = STAGE[kind]
    conn.execute(text(f"DROP TABLE IF EXISTS {name} CASCADE"))
    conn.execute(text(f"CREATE TEMP TABLE {name} (row_no integer PRIMARY KEY, "
                      + ", ".join(f"{c} {t}" for c, t in cols)
                      + ", lon double precision, lat double precision, geom geometry(Point, 4326),"
                      " moved boolean)"))  # NULL: no such row when the merge began
    names = ["row_no"] + [c for c, _ in cols] + ["lon", "lat", "geom"]

    def ewkt(r):
        return None if r.get("lon") is None else f"SRID=4326;POINT({r['lon']!r} {r['lat']!r})"
    copy_rows(conn, name, names, ([r["_row"]] + [r.get(c) for c, _ in cols] + [r.get("lon"), r.get("lat"), ewkt(r)]
                                  for r in records))
    conn.execute(text(f"CREATE INDEX ON {name} USING gist (geom)"))
    # the plans only join on row_no / code / geom: statistics for the rest are not needed
    conn.execute(text(f"ANALYZE {name} (row_no, code, geom)" if kind != "contacts" else f"ANALYZE {name}"))
    return name


def _value(col: str, present: set[str]) -> str:
    """Expression for the INSERT select of staged column `col`."""
    if col not in present:
        return ENUM_DEFAULTS.get(col, "''" if col in TEXT_DEFAULT_EMPTY else "NULL")
    if col in TEXT_DEFAULT_EMPTY:
        return f"coalesce(s.{col}, '')"
    if col in ENUM_DEFAULTS:
        return f"coalesce(s.{col}, {ENUM_DEFAULTS[col]})"
    return f"s.{col}"


def _update_expr(col: str, target: str) -> str:
    if col in TEXT_DEFAULT_EMPTY:
        return f"coalesce(s.{col}, '')"
    if col in ENUM_DEFAULTS:
        return f"coalesce(s.{col}, {target}.{col})"
    return f"s.{col}"


def merge_keyed(conn: Connection, kind: str, present: set[str]) -> dict[str, int]:
    """UPDATE existing rows by code, INSERT new ones. Returns counts."""
    table, st = TABLE[kind], f"imp_{kind}"
    src = f"imp_{kind}_v" if kind == "customers" else st
    cols = [c for c, _ in STAGE[kind] if c != "code"]
    upd_cols = [c for c in cols if c in present or (c == "owner_id" and "owner" in present)]
    has_geom = kind != "contacts"
    quality = kind == "customers"
    sets = [f"{c} = {_update_expr(c, 't')}" for c in upd_cols]
    olds = [f"t.{c}" for c in upd_cols]
    news = [_update_expr(c, "t") for c in upd_cols]
    if has_geom:
        sets.append("geom = coalesce(s.geom, t.geom)")
        olds.append("t.geom")
        news.append("coalesce(s.geom, t.geom)")
        if quality:
            sets.append("geocode_quality = CASE WHEN s.geom IS NULL THEN t.geocode_quality ELSE 'exact' END")
            sets.append("region_id = CASE WHEN s.geom IS NULL THEN t.region_id ELSE s.region_id_ END")
            sets.append("service_branch_id = CASE WHEN s.geom IS NULL THEN t.service_branch_id"
                        " ELSE s.service_branch_id_ END")
    conn.execute(text("DROP TABLE IF EXISTS imp_affected"))
    conn.execute(text("CREATE TEMP TABLE imp_affected (id integer PRIMARY KEY, moved boolean, inserted boolean)"))
    if has_geom:
        conn.execute(text(
            # lock the existing rows first, so "moved" compares with the version this import
            # will update (a concurrent import may change or insert them meanwhile)
            f"UPDATE {st} s SET moved = ST_AsEWKB(t.geom) IS DISTINCT FROM ST_AsEWKB(coalesce(s.geom, t.geom))"
            f" FROM (SELECT code, geom FROM {table} WHERE code IN (SELECT code FROM {st})"
            f"       ORDER BY code FOR UPDATE) t WHERE t.code = s.code"))
    updated = conn.execute(text(
        f"WITH u AS (UPDATE {table} t SET {', '.join(sets)}, version = t.version + 1, updated_at = now()"
        f" FROM {src} s WHERE t.code = s.code AND ROW({', '.join(olds)}) IS DISTINCT FROM ROW({', '.join(news)})"
        # a row committed by another import after the check (moved NULL) moved if the file
        # gives a location: its memberships were computed for the other file's point
        f" RETURNING t.id, coalesce(s.moved, s.geom IS NOT NULL) AS moved)"
        f" INSERT INTO imp_affected SELECT id, moved, false FROM u")).rowcount
    ins_cols = ["code"] + cols + (["geom"] if has_geom else []) + (["geocode_quality"] if quality else [])
    ins_vals = ["s.code"] + [_value(c, present | ({"owner_id"} if "owner" in present else set())) for c in cols]
    if has_geom:
        ins_vals.append("s.geom")
    if quality:
        ins_vals.append("CASE WHEN s.geom IS NULL THEN 'none' ELSE 'exact' END")
        ins_cols += ["region_id", "service_branch_id"]
        ins_vals += ["s.region_id_", "s.service_branch_id_"]
    inserted = conn.execute(text(
        f"WITH i AS (INSERT INTO {table} ({', '.join(ins_cols)}) SELECT {', '.join(ins_vals)} FROM {src} s"
        f" WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.code = s.code) ORDER BY s.row_no RETURNING id)"
        " INSERT INTO imp_affected SELECT id, true, true FROM i")).rowcount
    total = conn.execute(text(f"SELECT count(*) FROM {st}")).scalar()
    return {"inserted": inserted, "updated": updated, "unchanged": total - inserted - updated}


def merge_contacts(conn: Connection, present: set[str]) -> dict[str, int]:
    """Contacts have no code: a contact is the same when customer and name (case-
    insensitive) match. The first matching contact is updated."""
    cols = [c for c, _ in STAGE["contacts"] if c not in ("customer_code", "name")]
    upd = [c for c in cols if c in present]
    conn.execute(text("ALTER TABLE imp_contacts ADD COLUMN customer_id integer, ADD COLUMN contact_id integer"))
    conn.execute(text("UPDATE imp_contacts s SET customer_id = c.id FROM customer c WHERE c.code = s.customer_code"))
    conn.execute(text(
        "UPDATE imp_contacts s SET contact_id = (SELECT min(k.id) FROM contact k"
        " WHERE k.customer_id = s.customer_id AND lower(k.name) = lower(s.name))"))
    updated = 0
    if upd:
        sets = ", ".join(f"{c} = {_update_expr(c, 'k')}" for c in upd)
        olds = ", ".join(f"k.{c}" for c in upd)
        news = ", ".join(_update_expr(c, "k") for c in upd)
        updated = conn.execute(text(
            f"UPDATE contact k SET {sets}, version = k.version + 1, updated_at = now() FROM imp_contacts s"
            f" WHERE k.id = s.contact_id AND ROW({olds}) IS DISTINCT FROM ROW({news})")).rowcount
    inserted = conn.execute(text(
        f"INSERT INTO contact (customer_id, name, {', '.join(cols)}) SELECT s.customer_id, s.name,"
        f" {', '.join(_value(c, present) for c in cols)} FROM imp_contacts s WHERE s.contact_id IS NULL"
        " ORDER BY s.row_no")).rowcount
    total = conn.execute(text("SELECT count(*) FROM imp_contacts")).scalar()
    return {"inserted": inserted, "updated": updated, "unchanged": total - inserted - updated}


def compute_areas(conn: Connection, st: str) -> None:
    """Region, service branch and territories of every staged point, set-based, BEFORE
    the merge, so each customer row is written once with its final membership (an
    UPDATE of 100k customer rows afterwards would rewrite every index, trigram GINs
    included). Same rules as `crm_region_for` / `crm_service_branch_for` (migration 0002)."""
    conn.execute(text(f"DROP VIEW IF EXISTS {st}_v"))
    conn.execute(text("DROP TABLE IF EXISTS imp_region, imp_branch, imp_terr"))
    conn.execute(text(
        f"CREATE TEMP TABLE imp_region AS SELECT DISTINCT ON (s2.row_no) s2.row_no, rp.region_id"
        f" FROM region_part rp JOIN {st} s2 ON ST_Intersects(rp.geom, s2.geom)"
        f" ORDER BY s2.row_no, rp.level DESC, rp.region_id"))
    conn.execute(text(
        f"CREATE TEMP TABLE imp_branch AS SELECT DISTINCT ON (s2.row_no) s2.row_no, b.id AS branch_id"
        f" FROM (SELECT id, geom, ST_Subdivide(service_area, 128) AS part FROM branch"
        f"       WHERE service_area IS NOT NULL) b JOIN {st} s2 ON ST_Intersects(b.part, s2.geom)"
        f" ORDER BY s2.row_no, s2.geom <-> b.geom, b.id"))
    conn.execute(text(
        f"CREATE TEMP TABLE imp_terr AS SELECT DISTINCT s2.row_no, t.id AS territory_id"
        f" FROM (SELECT id, ST_Subdivide(geom, 128) AS part FROM territory) t"
        f" JOIN {st} s2 ON ST_Intersects(t.part, s2.geom)"))
    for t in ("imp_region", "imp_branch"):
        conn.execute(text(f"ALTER TABLE {t} ADD PRIMARY KEY (row_no)"))
    conn.execute(text(f"CREATE TEMP VIEW {st}_v AS SELECT s.*, r.region_id AS region_id_, "
                      f"b.branch_id AS service_branch_id_ FROM {st} s LEFT JOIN imp_region r USING (row_no)"
                      f" LEFT JOIN imp_branch b USING (row_no)"))


def refresh_territories(conn: Connection, st: str) -> int:
    """Territory membership of the customers whose location changed (`imp_affected`),
    from the territories computed on the staged points."""
    n = conn.execute(text("SELECT count(*) FROM imp_affected WHERE moved")).scalar()
    if not n:
        return 0
    # customers inserted by this import have no memberships yet: only moved ones are cleared
    conn.execute(text("DELETE FROM customer_territory ct USING imp_affected a"
                      " WHERE a.moved AND NOT a.inserted AND ct.customer_id = a.id"))
    conn.execute(text(
        f"INSERT INTO customer_territory (customer_id, territory_id)"
        f" SELECT c.id, it.territory_id FROM imp_terr it JOIN {st} s USING (row_no)"
        f" JOIN customer c ON c.code = s.code JOIN imp_affected a ON a.id = c.id AND a.moved"))
    return n


def find_duplicates(conn: Connection, kind: str) -> list[dict]:
    """Possible duplicates: names similar (pg_trgm similarity ≥ 0.5) and locations
    closer than 200 m, within the file and against existing records with another code."""
    if kind not in ("customers", "branches", "partners"):
        return []
    table, st = TABLE[kind], f"imp_{kind}"
    near = (f"ST_DWithin(a.geom::geography, b.geom::geography, {DUPLICATE_DISTANCE_M})")
    out = []
    # within the file: candidate pairs from a hash join on a 3-D grid of earth-centred
    # (sphere, R = 6378137 m) coordinates with GRID_CELL_M cells; a chord is never longer
    # than the distance along the surface, so every pair closer than DUPLICATE_DISTANCE_M
    # lies in the same or a neighbouring cell, anywhere on Earth (poles and the
    # antimeridian included). One hash join instead of 100k GiST probes.
    cell = GRID_CELL_M
    conn.execute(text("DROP TABLE IF EXISTS imp_grid"))
    conn.execute(text(
        f"CREATE TEMP TABLE imp_grid AS SELECT row_no,"
        f" floor(6378137 * cos(radians(ST_Y(geom))) * cos(radians(ST_X(geom))) / {cell})::int AS gx,"
        f" floor(6378137 * cos(radians(ST_Y(geom))) * sin(radians(ST_X(geom))) / {cell})::int AS gy,"
        f" floor(6378137 * sin(radians(ST_Y(geom))) / {cell})::int AS gz FROM {st} WHERE geom IS NOT NULL"))
    conn.execute(text("ANALYZE imp_grid"))
    conn.execute(text("SET LOCAL enable_mergejoin = off"))   # narrow rows, one hash of the grid
    for r in conn.execute(text(
            f"WITH pairs AS MATERIALIZED (SELECT a.row_no AS ra, b.row_no AS rb FROM imp_grid a"
            f" CROSS JOIN (SELECT x, y, z FROM generate_series(-1, 1) x, generate_series(-1, 1) y,"
            f" generate_series(-1, 1) z) o"
            f" JOIN imp_grid b ON b.gx = a.gx + o.x AND b.gy = a.gy + o.y AND b.gz = a.gz + o.z"
            f" WHERE b.row_no > a.row_no)"
            f" SELECT a.row_no, a.code, b.row_no, b.code, round(similarity(a.name, b.name)::numeric, 2),"
            f" round(ST_Distance(a.geom::geography, b.geom::geography)::numeric, 1)"
            f" FROM pairs p JOIN {st} a ON a.row_no = p.ra JOIN {st} b ON b.row_no = p.rb"
            f" WHERE {near} AND similarity(a.name, b.name) >= {DUPLICATE_NAME_SIMILARITY}"
            f" ORDER BY a.row_no, b.row_no LIMIT {MAX_DUPLICATE_REPORTS}")):
        out.append({"row": r[2], "code": r[3], "duplicate_of_row": r[0], "duplicate_of_code": r[1],
                    "name_similarity": float(r[4]), "distance_m": float(r[5]), "where": "file"})
    # against the database: the same grid for the stored records inside the file's
    # extent grown by the distance (one index range scan and a hash join, not one GiST
    # probe per staged row)
    grid = lambda g: (  # noqa: E731
        f"floor(6378137 * cos(radians(ST_Y({g}))) * cos(radians(ST_X({g}))) / {cell})::int AS gx,"
        f" floor(6378137 * cos(radians(ST_Y({g}))) * sin(radians(ST_X({g}))) / {cell})::int AS gy,"
        f" floor(6378137 * sin(radians(ST_Y({g}))) / {cell})::int AS gz")
    conn.execute(text("DROP TABLE IF EXISTS imp_grid_db"))
    conn.execute(text(
        f"CREATE TEMP TABLE imp_grid_db AS SELECT b.code, {grid('b.geom')} FROM {table} b,"
        f" (SELECT ST_Extent(geom)::geometry AS e FROM {st}) x"
        f" WHERE x.e IS NOT NULL AND b.geom && ST_Expand(x.e,"
        f"  least(180, 0.002 / cos(radians(least(89.9, greatest(abs(ST_YMin(x.e)), abs(ST_YMax(x.e))) + 0.002)))),"
        f"  0.002)"))
    conn.execute(text("ANALYZE imp_grid_db"))
    for r in conn.execute(text(
            f"WITH pairs AS MATERIALIZED (SELECT a.row_no AS ra, b.code AS cb FROM imp_grid a"
            f" CROSS JOIN (SELECT x, y, z FROM generate_series(-1, 1) x, generate_series(-1, 1) y,"
            f" generate_series(-1, 1) z) o"
            f" JOIN imp_grid_db b ON b.gx = a.gx + o.x AND b.gy = a.gy + o.y AND b.gz = a.gz + o.z)"
            f" SELECT a.row_no, a.code, b.code, round(similarity(a.name, b.name)::numeric, 2),"
            f" round(ST_Distance(a.geom::geography, b.geom::geography)::numeric, 1)"
            f" FROM pairs p JOIN {st} a ON a.row_no = p.ra JOIN {table} b ON b.code = p.cb"
            f" WHERE b.code <> a.code AND {near} AND similarity(a.name, b.name) >= {DUPLICATE_NAME_SIMILARITY}"
            f" ORDER BY a.row_no, b.code LIMIT {MAX_DUPLICATE_REPORTS}")):
        out.append({"row": r[0], "code": r[1], "duplicate_of_code": r[2], "name_similarity": float(r[3]),
                    "distance_m": float(r[4]), "where": "database"})
    conn.execute(text("SET LOCAL enable_mergejoin = on"))
    return out


def load(conn: Connection, kind: str, records: list[dict], present: set[str],
         progress: Callable[[str], None] | None = None) -> dict:
    """Stage and merge `records` inside the caller's transaction. Returns counts and
    possible duplicates."""
    say = progress or (lambda s: None)
    # the import is one transaction: a crash before commit loses nothing that was not
    # lost anyway, so the commit need not wait for the WAL flush
    conn.execute(text("SET LOCAL synchronous_commit = off"))
    conn.execute(text("SET LOCAL work_mem = '64MB'"))
    # a bulk import is a deliberate, bounded operation (file size is capped): it gets
    # more time than an interactive query, whatever the web default is
    conn.execute(text("SET LOCAL statement_timeout = '10min'"))
    if kind == "customers":
        conn.execute(text("SET LOCAL geo_crm.bulk = 'on'"))
        conn.execute(text("SET LOCAL gin_pending_list_limit = '64MB'"))
    say("staging")
    stage(conn, kind, records)
    say("duplicates")
    dups = find_duplicates(conn, kind)
    if kind == "customers":
        say("areas")
        compute_areas(conn, f"imp_{kind}")
    say("merging")
    counts = merge_contacts(conn, present) if kind == "contacts" else merge_keyed(conn, kind, present)
    if kind == "customers":
        say("membership")
        counts["membership_refreshed"] = refresh_territories(conn, f"imp_{kind}")
        conn.execute(text("SET LOCAL geo_crm.bulk = 'off'"))
    counts["duplicates"] = dups
    return counts
