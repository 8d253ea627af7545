"""Deterministic sample data: a fictional Helsinki-based wholesale distributor selling
across Finland, on real geography (Natural Earth regions, GeoNames places, the
OpenStreetMap extract of central Helsinki).

Everything is generated from `seed` and `as_of` (the day the data ends on), so two
loads with the same arguments give the same rows. A load replaces all CRM data in one
transaction: a failure leaves the database as it was. Bulk rows go in with COPY and
area membership is computed set-based by the database (`crm_compute_membership()`, the
same rules as the per-row triggers) before the customers are written, so each customer row
is written once, complete.

Speed (a million customers in a few minutes): every large table is generated as whole
numpy columns and streamed with COPY in text form (`geo_crm.sample.textcopy`), written
into a table truncated in the same transaction (COPY FREEZE: no later rewrite to set hint
bits or freeze), with its foreign keys, secondary indexes and bulk-inert row triggers
dropped during the COPY and rebuilt once afterwards (`_bulk_table`).
"""
from __future__ import annotations

import csv
from contextlib import contextmanager
import gzip
import io
import json
import time as time_
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Callable

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.ops import nearest_points
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from geo_crm.sample import names
from geo_crm.sample.textcopy import (NULL, cat, copy_columns, day_text, digits, escape, ewkb_points, fields,
                                     hundredths, lazy, null_where, nullable, stack, timestamps_utc, txt, utf8)
from geo_crm.security.passwords import hash_password

DATA = Path(__file__).resolve().parent.parent.parent / "sample_data"

TERRITORIES = [
    ("Capital Region & South", "#1f77b4", ["FI-18"]),
    ("Southwest", "#ff7f0e", ["FI-19", "FI-17", "FI-06"]),
    ("Central Finland", "#2ca02c", ["FI-11", "FI-08", "FI-16"]),
    ("East", "#d62728", ["FI-02", "FI-09", "FI-04", "FI-15", "FI-13"]),
    ("North & West", "#9467bd", ["FI-03", "FI-12", "FI-07", "FI-14", "FI-05", "FI-10"]),
]
BRANCH_CITIES = ["Espoo", "Tampere", "Turku", "Oulu", "Jyväskylä", "Kuopio", "Lahti", "Vaasa", "Rovaniemi"]

# username, role, full name; the password is f"{username}-demo"
DEMO_USERS = [
    ("admin", "admin", "Aino Admin"),
    ("executive", "executive", "Eero Executive"),
    ("sales", "sales_manager", "Sanna Sales"),
    ("regional", "regional_manager", "Risto Regional"),
    ("account", "account_manager", "Anna Account"),
    ("service", "service_agent", "Ville Service"),
    ("logistics", "logistics", "Lauri Logistics"),
    ("customer", "customer", "Kaisa Customer"),
]
EXTRA_ACCOUNT_MANAGERS = 5
EXTRA_SERVICE_AGENTS = 2

TABLES = ["route_stop", "delivery_route", "delivery_plan", "churn_alert", "service_rating", "service_record",
          "development_plan_step", "opportunity_stage_change", "opportunity", "order_line", "sales_order",
          "product", "contact", "customer_territory", "api_token", "user_territory", "app_user", "customer",
          "vehicle", "partner_region", "partner", "branch", "territory_region", "territory_history", "territory",
          "place", "region_part", "region", "dictionary", "road_segment", "road_vertex", "address_point",
          "audit_log", "import_job", "geocode_cache", "app_setting"]


def demo_password(username: str) -> str:
    return f"{username}-demo"


def _copy(conn: Connection, table: str, columns: list[str], rows) -> int:
    """COPY rows (an iterable of tuples; None for NULL) into `table`."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    n = 0
    for r in rows:
        w.writerow(["\\N" if v is None else v for v in r])
        n += 1
    buf.seek(0)
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cur:
        cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buf)
    return n


# row triggers that do nothing while `geo_crm.bulk` is on: disabling them for a bulk COPY
# changes nothing but the cost of queueing and calling them once per row
BULK_INERT_TRIGGER_FUNCTIONS = ("crm_audit", "crm_customer_areas", "crm_customer_territories")


@contextmanager
def _bulk_table(conn: Connection, table: str):
    """Drop `table`'s foreign keys and secondary indexes for a bulk COPY and recreate
    them afterwards (one validating join and one sorted build instead of a check and an
    index insert per row), and disable its row triggers that are inert in bulk mode.
    Runs inside the caller's transaction: all or nothing."""
    fks = conn.execute(text(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = CAST(:t AS regclass) AND contype = 'f'"), {"t": table}).all()
    idx = conn.execute(text(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = CAST(:t AS regclass) AND NOT x.indisprimary AND NOT x.indisunique"), {"t": table}).all()
    triggers = conn.execute(text(
        "SELECT t.tgname FROM pg_trigger t WHERE t.tgrelid = CAST(:t AS regclass) AND NOT t.tgisinternal "
        "AND t.tgenabled <> 'D' AND (t.tgtype & 1) = 1 AND t.tgfoid::regproc::text = ANY(:f)"),
        {"t": table, "f": list(BULK_INERT_TRIGGER_FUNCTIONS)}).scalars().all()
    for name, _ in fks:
        conn.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
    for name, _ in idx:
        conn.execute(text(f'DROP INDEX "{name}"'))
    for name in triggers:
        conn.execute(text(f'ALTER TABLE {table} DISABLE TRIGGER "{name}"'))
    yield
    for name in triggers:
        conn.execute(text(f'ALTER TABLE {table} ENABLE TRIGGER "{name}"'))
    for _, ddl in idx:
        conn.execute(text(ddl))
    for name, ddl in fks:
        conn.execute(text(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {ddl}'))


def _ewkt(lon, lat) -> str:
    return f"SRID=4326;POINT({lon:.6f} {lat:.6f})"


def _money(values) -> np.ndarray:
    """EUR amounts as exact 2-decimal text."""
    from geo_crm.sample.textcopy import cents
    return cents(values)


def load_sample(engine: Engine, *, customers: int = 5000, seed: int = 42, as_of: date | None = None,
                if_empty: bool = False, log: Callable[[str], None] = print) -> dict[str, int]:
    """Replace all CRM data with the sample. Returns row counts; {} if skipped."""
    as_of = as_of or date.today()
    with engine.begin() as conn:
        if if_empty and conn.execute(text("SELECT EXISTS (SELECT 1 FROM customer)")).scalar():
            log("sample data already present: skipped (use `geo-crm sample load` to replace it)")
            return {}
        try:  # room for the staged points in memory; only possible before the session's first temp table
            with conn.begin_nested():
                conn.execute(text("SET LOCAL temp_buffers = '256MB'"))
        except DBAPIError:
            pass
        conn.execute(text("SET LOCAL geo_crm.bulk = 'on'"))
        conn.execute(text("SET LOCAL statement_timeout = 0"))
        conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        gen = _Generator(conn, np.random.default_rng(seed), customers, as_of, log)
        stats = gen.run()
    gen._step("committed")
    return stats


class _Generator:
    def __init__(self, conn: Connection, rng: np.random.Generator, n_customers: int, as_of: date, log):
        self.conn, self.rng, self.n, self.as_of, self.log = conn, rng, n_customers, as_of, log
        self.stats: dict[str, int] = {}
        self._t = time_.monotonic()

    def _step(self, message: str) -> None:
        """Progress line: what starts now, after how long the previous step took."""
        now = time_.monotonic()
        self.log(f"{message} (previous step {now - self._t:.1f} s)")
        self._t = now

    def run(self) -> dict[str, int]:
        t0 = time_.monotonic()
        self._step("geography: regions, places, branches, partners, territories, users")
        self.regions()
        self.places()
        self.dictionaries()
        self.branches()
        self.partners()
        self.territories()
        self.users_pre()
        self.plan_service_records()
        self.customers()
        self.users_post()
        self.contacts()
        self.products()
        self.orders()
        with _bulk_table(self.conn, "development_plan_step"), _bulk_table(self.conn, "opportunity_stage_change"), \
                _bulk_table(self.conn, "opportunity"):
            self.opportunities()
        with _bulk_table(self.conn, "service_rating"), _bulk_table(self.conn, "service_record"):
            self.service_records()
        self._step("roads and address points")
        self.roads_and_addresses()
        self._advance_sequences()
        # statistics inside the load's transaction: the churn scan plans with them and they
        # commit with the data (no second pass over the big tables afterwards)
        self._step("statistics (ANALYZE)")
        self.conn.execute(text("ANALYZE"))
        self._step("churn scan")
        from geo_crm.churn.service import scan as churn_scan
        self.stats["churn_alerts"] = churn_scan(self.conn, as_of=self.as_of).new
        self.conn.execute(text("ANALYZE churn_alert"))
        self._step("committing")
        self.log(f"sample data generated in {time_.monotonic() - t0:.1f} s")
        return self.stats

    def _advance_sequences(self) -> None:
        """Rows were written with explicit ids: move every id sequence past them."""
        rows = self.conn.execute(text(
            "SELECT table_name, pg_get_serial_sequence(table_name, 'id') FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_name = 'id' AND table_name = ANY(:t)"), {"t": TABLES}).all()
        for table, seq in rows:
            if seq:
                self.conn.execute(text(f"SELECT setval(:s, (SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"),
                                  {"s": seq})

    # -- geography ----------------------------------------------------------------------
    def regions(self) -> None:
        fc = json.loads((DATA / "regions_fi.geojson").read_text(encoding="utf-8"))
        self.region_geoms: dict[str, object] = {}
        rows = []
        for i, f in enumerate(sorted(fc["features"], key=lambda f: f["properties"]["code"]), start=1):
            p = f["properties"]
            rows.append((i, p["code"], p["name_en"], p.get("name_fi"), 1,
                         "SRID=4326;" + shapely.to_wkt(shapely.force_2d(shape(f["geometry"])), rounding_precision=6)))
            self.region_geoms[p["code"]] = shape(f["geometry"])
        self.region_ids = {r[1]: r[0] for r in rows}
        _copy(self.conn, "region", ["id", "code", "name", "name_local", "level", "geom"], rows)
        self.conn.execute(text("UPDATE region SET geom = ST_Multi(geom)"))  # triggers parts + area
        self.land = shapely.union_all(list(self.region_geoms.values()))
        shapely.prepare(self.land)
        self.stats["regions"] = len(rows)

    def places(self) -> None:
        with open(DATA / "places_fi.csv", encoding="utf-8") as f:
            self.place_rows = list(csv.DictReader(f))
        self.place_name = utf8(escape([p["name"] for p in self.place_rows]))
        rows = [(int(p["geonameid"]), p["name"], p["asciiname"], int(p["population"]),
                 self.region_ids.get(p["region_code"]), _ewkt(float(p["lon"]), float(p["lat"])))
                for p in self.place_rows]
        _copy(self.conn, "place", ["id", "name", "ascii_name", "population", "region_id", "geom"], rows)
        self.conn.execute(text("UPDATE region r SET population = coalesce((SELECT sum(population) FROM place p "
                               "WHERE p.region_id = r.id), 0)"))
        self.stats["places"] = len(rows)

    def dictionaries(self) -> None:
        rows = []
        for kind, items in names.DICTIONARIES.items():
            for i, (code, label) in enumerate(items):
                rows.append((kind, code, label, i, True))
        _copy(self.conn, "dictionary", ["kind", "code", "label", "sort", "active"], rows)

    def branches(self) -> None:
        with open(DATA / "helsinki_addresses.csv", encoding="utf-8") as f:
            self.addresses = list(csv.DictReader(f))
        lon = np.array([float(a["lon"]) for a in self.addresses])
        lat = np.array([float(a["lat"]) for a in self.addresses])
        self.addr_lon, self.addr_lat = lon, lat
        self.addr_address = utf8(escape([f"{a['street']} {a['housenumber']}" for a in self.addresses]))
        self.addr_postcode = utf8(escape([a["postcode"] or "" for a in self.addresses]))
        self.addr_city = utf8(escape([a["city"] or "Helsinki" for a in self.addresses]))
        centre = int(np.argmin((lon - lon.mean()) ** 2 + ((lat - lat.mean()) * 2) ** 2))
        a = self.addresses[centre]
        by_name = {p["name"]: p for p in self.place_rows}
        hours = json.dumps({d: ["07:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")})
        rows = [(1, "BR-HEL", "Helsinki City Depot", f"{a['street']} {a['housenumber']}", a["postcode"] or "00100",
                 "Helsinki", "+358 9 310 1000", hours, True, _ewkt(float(a["lon"]), float(a["lat"])))]
        for i, city in enumerate(BRANCH_CITIES, start=2):
            p = by_name[city]
            rows.append((i, f"BR-{names.ascii_upper(city)[:3]}", f"{city} Branch", f"{names.STREETS[i]} {i * 3}",
                         f"{(i * 7919) % 99999:05d}", city, f"+358 {10 + i} 555 {1000 + i}", hours, True,
                         _ewkt(float(p["lon"]), float(p["lat"]))))
        _copy(self.conn, "branch", ["id", "code", "name", "address", "postcode", "city", "phone",
                                    "opening_hours", "is_depot", "geom"], rows)
        # nearest-branch (Voronoi) service areas clipped to the country
        self.conn.execute(text("""
            WITH land AS (SELECT ST_Union(geom) AS g FROM region),
                 cells AS (SELECT (ST_Dump(ST_VoronoiPolygons(ST_Collect(geom)))).geom AS cell FROM branch)
            UPDATE branch b SET service_area = ST_Multi(ST_CollectionExtract(ST_MakeValid(
                     ST_Intersection(c.cell, (SELECT g FROM land))), 3)),
                   service_area_kind = 'voronoi'
              FROM cells c WHERE ST_Contains(c.cell, b.geom)"""))
        vrows = []
        vid = 1
        for b in range(1, len(rows) + 1):
            count = 6 if b == 1 else int(self.rng.integers(2, 5))
            for k in range(count):
                cap = int(self.rng.choice([80, 120, 160]))
                vrows.append((vid, b, f"Van {b}-{k + 1}", cap, "07:00", "17:00", 540, 40 if b == 1 else 60, True))
                vid += 1
        _copy(self.conn, "vehicle", ["id", "branch_id", "name", "capacity", "shift_start", "shift_end",
                                     "max_duration_min", "speed_kmh", "active"], vrows)
        self.n_branches = len(rows)
        self.stats["branches"] = len(rows)
        self.stats["vehicles"] = len(vrows)

    def partners(self) -> None:
        big = sorted(self.place_rows, key=lambda p: -int(p["population"]))[:60]
        idx = self.rng.choice(len(big), size=30, replace=False)
        rows, regions = [], []
        for i, j in enumerate(sorted(idx), start=1):
            p = big[j]
            lon, lat = self._jitter_in_land(float(p["lon"]), float(p["lat"]), 3000)
            ptype = ["distributor", "reseller", "supplier"][i % 3]
            rows.append((i, f"P-{i:03d}", f"{names.company_name(self.rng)} {['Logistics', 'Trading', 'Supply'][i % 3]}",
                         ptype, ["AAA", "AA", "A", "BBB"][i % 4], f"{names.STREETS[i % len(names.STREETS)]} {i}",
                         p["name"], "+358 40 " + f"{1000000 + i * 7919}"[-7:], _ewkt(lon, lat)))
            rid = self.region_ids.get(p["region_code"])
            if rid:
                regions.append((i, rid))
        _copy(self.conn, "partner", ["id", "code", "name", "partner_type", "credit_level", "address", "city",
                                     "phone", "geom"], rows)
        _copy(self.conn, "partner_region", ["partner_id", "region_id"], sorted(set(regions)))
        self.conn.execute(text("""UPDATE partner p SET coverage = u.geom
                                  FROM (SELECT pr.partner_id, ST_Multi(ST_Union(r.geom)) AS geom
                                          FROM partner_region pr JOIN region r ON r.id = pr.region_id
                                         GROUP BY pr.partner_id) u
                                  WHERE u.partner_id = p.id AND p.partner_type = 'distributor'"""))
        self.stats["partners"] = len(rows)

    def territories(self) -> None:
        for i, (name, color, codes) in enumerate(TERRITORIES, start=1):
            ids = [self.region_ids[c] for c in codes if c in self.region_ids]
            self.conn.execute(text(
                "INSERT INTO territory (id, name, description, color, source, geom) "
                "SELECT :i, :n, :d, :c, 'regions', ST_Multi(ST_Union(geom)) FROM region WHERE id = ANY(:ids)"),
                {"i": i, "n": name, "d": f"Regions: {', '.join(codes)}", "c": color, "ids": ids})
            _copy(self.conn, "territory_region", ["territory_id", "region_id"], [(i, r) for r in ids])
        self.stats["territories"] = len(TERRITORIES)

    def _jitter_in_land(self, lon: float, lat: float, sigma_m: float) -> tuple[float, float]:
        for _ in range(50):
            dx, dy = self.rng.normal(0, sigma_m, 2)
            x = lon + dx / (111_320 * np.cos(np.radians(lat)))
            y = lat + dy / 110_540
            if shapely.contains_xy(self.land, x, y):
                return float(x), float(y)
        return lon, lat

    # -- people -------------------------------------------------------------------------------
    def users_pre(self) -> None:
        """Staff users (customers' own logins come after the customers exist)."""
        rows = []
        uid = 1
        self.user_ids: dict[str, int] = {}
        demo_hashes = {u: hash_password(demo_password(u)) for u, _, _ in DEMO_USERS}
        for username, role, full in DEMO_USERS:
            if role == "customer":
                continue
            rows.append((uid, username, demo_hashes[username], role, full, f"{username}@example.com",
                         1 if role == "logistics" else None))
            self.user_ids[username] = uid
            uid += 1
        spare = hash_password(demo_password("account"))  # extra staff share one demo hash
        for k in range(2, EXTRA_ACCOUNT_MANAGERS + 2):
            u = f"account{k}"
            rows.append((uid, u, spare, "account_manager", f"{names.person_name(self.rng)}", f"{u}@example.com", None))
            self.user_ids[u] = uid
            uid += 1
        for k in range(2, EXTRA_SERVICE_AGENTS + 2):
            u = f"service{k}"
            rows.append((uid, u, spare, "service_agent", f"{names.person_name(self.rng)}", f"{u}@example.com", None))
            self.user_ids[u] = uid
            uid += 1
        self._customer_hash = demo_hashes["customer"]
        _copy(self.conn, "app_user", ["id", "username", "password_hash", "role", "full_name", "email", "branch_id"], rows)
        self.account_managers = [self.user_ids["account"]] + [self.user_ids[f"account{k}"]
                                                              for k in range(2, EXTRA_ACCOUNT_MANAGERS + 2)]
        self.service_agents = [self.user_ids["service"]] + [self.user_ids[f"service{k}"]
                                                            for k in range(2, EXTRA_SERVICE_AGENTS + 2)]
        _copy(self.conn, "user_territory", ["user_id", "territory_id"],
              [(self.user_ids["regional"], 2), (self.user_ids["sales"], 1), (self.user_ids["sales"], 3)])

    def users_post(self) -> None:
        cid = 1  # the first downtown Helsinki customer
        self.conn.execute(text(
            "INSERT INTO app_user (id, username, password_hash, role, full_name, email, customer_id) "
            "VALUES (:i, 'customer', :h, 'customer', 'Kaisa Customer', 'customer@example.com', :c)"),
            {"i": len(self.user_ids) + 1, "h": self._customer_hash, "c": cid})
        self.stats["users"] = len(self.user_ids) + 1

    # -- customers ----------------------------------------------------------------------------
    def _customer_points(self) -> tuple[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray]:
        """Locations: ~8% of customers at real downtown Helsinki addresses (OSM), the rest
        scattered around GeoNames places weighted by population, kept on land.
        Returns lon, lat (degrees, rounded to 6 decimals), the downtown count, the
        downtown address indexes and the place index of every other customer."""
        rng, n = self.rng, self.n
        n_down = min(len(self.addresses), max(1, int(round(n * 0.08))))
        n_rest = n - n_down
        down_idx = rng.choice(len(self.addresses), size=n_down, replace=False)
        down_idx.sort()
        pop = np.array([int(p["population"]) for p in self.place_rows], dtype=float)
        w = pop ** 0.9
        w /= w.sum()
        place_idx = rng.choice(len(self.place_rows), size=n_rest, p=w)
        plon = np.array([float(p["lon"]) for p in self.place_rows])[place_idx]
        plat = np.array([float(p["lat"]) for p in self.place_rows])[place_idx]
        sigma = np.clip(np.sqrt(pop[place_idx]) * 8, 400, 6000)  # metres: bigger towns spread wider
        lon = np.empty(n_rest)
        lat = np.empty(n_rest)
        todo = np.arange(n_rest)
        for attempt in range(30):
            if todo.size == 0:
                break
            dx = rng.normal(0, 1, todo.size) * sigma[todo] / (1 + attempt)
            dy = rng.normal(0, 1, todo.size) * sigma[todo] / (1 + attempt)
            x = plon[todo] + dx / (111_320 * np.cos(np.radians(plat[todo])))
            y = plat[todo] + dy / 110_540
            ok = shapely.contains_xy(self.land, x, y)
            lon[todo[ok]] = x[ok]
            lat[todo[ok]] = y[ok]
            todo = todo[~ok]
        inner = self.land.buffer(-0.002) if todo.size else None  # ~100-200 m inland
        for i in todo:  # the place lies offshore in the generalised outline: nearest inland point
            p = nearest_points(inner, shapely.Point(plon[i], plat[i]))[0]
            lon[i], lat[i] = p.x, p.y
        lon = np.round(np.concatenate([self.addr_lon[down_idx], lon]), 6)
        lat = np.round(np.concatenate([self.addr_lat[down_idx], lat]), 6)
        return lon, lat, n_down, down_idx, place_idx

    def _membership(self, ids: np.ndarray, geom: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Region and service branch of each point by the database's own rules
        (`crm_compute_membership`), before any customer row is written; territory
        memberships stay in `crm_membership_territory` for `customers()`."""
        c = self.conn
        c.execute(text("CREATE TEMP TABLE sample_point (id integer NOT NULL, geom geometry(Point, 4326) NOT NULL) "
                       "ON COMMIT DROP"))
        # staged in ~5 km cells, row by row: the join then reads the points of one area part
        # from neighbouring pages (a quarter faster than customer order at 1M points)
        lon, lat = self.cust_lon, self.cust_lat
        order = np.lexsort((np.floor(lon / 0.05), np.floor(lat / 0.05)))
        copy_columns(c, "sample_point", {"id": ids[order], "geom": geom[order]})
        c.execute(text("CREATE INDEX ON sample_point USING gist (geom)"))
        c.execute(text("ANALYZE sample_point"))
        c.execute(text("SELECT crm_compute_membership('sample_point')"))
        buf = io.StringIO()
        with c.connection.dbapi_connection.cursor() as cur:
            cur.copy_expert("COPY (SELECT id, coalesce(region_id, 0), coalesce(service_branch_id, 0) "
                            "FROM crm_membership) TO STDOUT", buf)
        m = np.array(buf.getvalue().split(), dtype=np.int64).reshape(-1, 3)
        region = np.zeros(len(ids) + 1, dtype=np.int64)
        branch = np.zeros(len(ids) + 1, dtype=np.int64)
        region[m[:, 0]] = m[:, 1]
        branch[m[:, 0]] = m[:, 2]
        c.execute(text("DROP TABLE sample_point"))
        return region[1:], branch[1:]

    def customers(self) -> None:
        rng, n = self.rng, self.n
        self._step(f"locating {n:,} customers and computing their regions, service areas and territories")
        lon, lat, n_down, down_idx, place_idx = self._customer_points()
        ids = np.arange(1, n + 1)
        geom = ewkb_points(lon, lat)
        self.cust_lon, self.cust_lat = lon, lat
        region, branch = self._membership(ids, geom)

        self._step(f"writing {n:,} customers")
        levels = rng.choice(["key", "major", "ordinary", "small"], size=n, p=[0.03, 0.12, 0.5, 0.35])
        statuses = rng.choice(["active", "prospect", "dormant", "lost"], size=n, p=[0.82, 0.08, 0.06, 0.04])
        statuses[0] = "active"  # the demo customer login's own record
        kinds = rng.choice(["company", "person"], size=n, p=[0.9, 0.1])
        industries = rng.choice([c for c, _ in names.DICTIONARIES["industry"]], size=n)
        credit = rng.choice(["AAA", "AA", "A", "BBB", "BB", "B", "C"], size=n,
                            p=[0.05, 0.15, 0.3, 0.25, 0.15, 0.07, 0.03])
        owners = np.array(self.account_managers)[rng.integers(0, len(self.account_managers), size=n)]
        employees = np.maximum(1, rng.lognormal(2.5, 1.2, size=n)).astype(int)
        start_h = rng.choice([7, 8, 9, 10], size=n, p=[0.2, 0.4, 0.3, 0.1])
        span_h = rng.choice([4, 6, 8, 9], size=n, p=[0.2, 0.3, 0.4, 0.1])
        service_min = rng.choice([5, 10, 15, 20], size=n, p=[0.3, 0.4, 0.2, 0.1])
        # customers joined 13 months to 6 years ago (before their first sample order); prospects recently
        age_days = np.where(statuses == "prospect", rng.integers(5, 300, size=n), rng.integers(400, 2200, size=n))
        person = kinds == "person"
        name = np.where(person, names.person_names(rng, n), names.company_names(rng, n))
        self.levels, self.statuses = levels, statuses
        self.cust_lon, self.cust_lat = lon, lat
        self.n_down = n_down

        streets = utf8(names.STREETS)
        rest = ids[n_down:]
        address = stack(self.addr_address[down_idx],
                        fields(streets[(rest * 31) % len(streets)], b" ", digits(1 + (rest * 7) % 120)))
        postcode = stack(self.addr_postcode[down_idx], digits((rest * 7919) % 99999, 5))
        city = stack(self.addr_city[down_idx], self.place_name[place_idx])
        # orders deliver here
        self.cust_delivery_address = np.ascontiguousarray(fields(address, b", ", city)).view(
            f"S{address.shape[1] + 2 + city.shape[1]}").ravel()
        self.cust_geom = geom
        created = np.datetime64(self.as_of, "D") - age_days.astype("timedelta64[D]")
        sat = self.satisfaction_x100
        owner_null = (statuses == "prospect") & (ids % 2 == 0)
        copy = {
            "id": ids, "code": lazy(lambda i: fields(b"C", digits(i, 7)), ids), "name": utf8(name),
            "kind": kinds.astype("S"), "industry": industries.astype("S"), "level": levels.astype("S"),
            "status": statuses.astype("S"), "credit_rating": credit.astype("S"),
            "employees": lazy(null_where, employees, person), "address": address, "postcode": postcode,
            "city": city, "country": np.full(n, b"FI"),
            "phone": lazy(lambda i: fields(b"+358 ", digits(40 + i % 10), b" ", digits(i % 1000, 3), b" ",
                                           digits(i % 10000, 4)), ids),
            "email": lazy(lambda i: fields(b"info", digits(i), b"@example.fi"), ids),
            "owner_id": lazy(null_where, owners, owner_null),
            "geom": geom, "geocode_quality": np.where(ids <= n_down, b"exact", b"address"),
            "delivery_start": lazy(lambda h: fields(digits(h, 2), b":00"), start_h),
            "delivery_end": lazy(lambda h: fields(digits(h, 2), b":00"), np.minimum(start_h + span_h, 20)),
            "service_min": service_min, "created_at": lazy(lambda d: fields(day_text(d), b"T09:00:00+00:00"), created),
            "region_id": lazy(lambda r: null_where(r, r == 0), region),
            "service_branch_id": lazy(lambda b: null_where(b, b == 0), branch),
            "satisfaction": lazy(lambda x: null_where(hundredths(x), x == 0), sat),
        }
        with _bulk_table(self.conn, "customer"):
            copy_columns(self.conn, "customer", copy, freeze=True)
            self._step("customer indexes")
        with _bulk_table(self.conn, "customer_territory"):
            self.stats["customer_territories"] = self.conn.execute(text(
                "INSERT INTO customer_territory (customer_id, territory_id) "
                "SELECT customer_id, territory_id FROM crm_membership_territory ORDER BY 1, 2")).rowcount
        self.stats["customers"] = n

    def contacts(self) -> None:
        rng, n = self.rng, self.n
        per = rng.choice([1, 1, 2, 3], size=n)
        cust = np.repeat(np.arange(1, n + 1), per)
        m = cust.size
        self._step(f"writing {m:,} contacts")
        first = np.concatenate([[True], np.diff(cust) != 0]) if m else np.zeros(0, dtype=bool)
        k = np.arange(1, m + 1)
        female = k % 2 == 1
        titles = np.array(names.TITLES).astype("S")
        person = names.person_names(rng, m, female)

        def phone_tail(k):
            return fields(digits(k % 1000, 3), b" ", digits(k % 10000, 4))
        with _bulk_table(self.conn, "contact"):
            copy_columns(self.conn, "contact", {
                "id": k, "customer_id": cust, "name": np.strings.encode(person, "utf-8"),
                "gender": np.where(female, b"female", b"male"),
                "title": lazy(lambda k: titles[k % len(titles)], k),
                "office_phone": lazy(lambda k: fields(b"+358 9 ", phone_tail(k)), k),
                "mobile_phone": lazy(lambda k: fields(b"+358 50 ", phone_tail(k)), k),
                "email": lazy(lambda k: fields(b"contact", digits(k), b"@example.fi"), k),
                "is_primary": first}, freeze=True)
            self._step("contact indexes")
        self.stats["contacts"] = m

    def products(self) -> None:
        rows = []
        for i, (name, cat_, price) in enumerate(names.PRODUCTS, start=1):
            cost = round(price * (0.55 + 0.3 * ((i * 37) % 10) / 10), 2)
            rows.append((i, f"SKU-{i:04d}", name, cat_, "pcs", price, cost, 1 + (i % 3)))
        _copy(self.conn, "product", ["id", "sku", "name", "category", "unit", "unit_price", "unit_cost", "load_units"], rows)
        self.product_price = np.array([p[5] for p in rows])
        self.product_cost = np.array([p[6] for p in rows])
        self.product_load = np.array([p[7] for p in rows])
        self.stats["products"] = len(rows)

    def orders(self) -> None:
        """12 months of orders. Order frequency and size follow the customer's level with a
        heavy-tailed (Pareto) per-customer scale, so revenue concentrates realistically.
        About 3% of active customers stopped ordering 7-11 months ago (churn candidates).
        Confirmed orders due tomorrow exist for downtown Helsinki customers (route planning)."""
        rng, n, as_of = self.rng, self.n, self.as_of
        lam = {"key": 22.0, "major": 12.0, "ordinary": 5.0, "small": 2.0}
        active = np.isin(self.statuses, ["active", "dormant", "lost"])
        lam_of = np.zeros(n)
        for level, rate in lam.items():
            lam_of[self.levels == level] = rate
        per_cust = np.where(active, rng.poisson(lam_of), 0)
        per_cust[0] = max(per_cust[0], 4)
        scale = rng.pareto(1.6, size=n) + 1.0
        stale = active & (rng.random(n) < 0.03)
        stale[0] = False
        span_days = np.where(stale, rng.integers(150, 330, size=n), 0)  # stale: last order 7-11 months ago
        cust = np.repeat(np.arange(1, n + 1), per_cust)
        m = cust.size
        offs = rng.integers(0, 365, size=m)
        min_off = np.repeat(np.maximum(span_days + 30, 0), per_cust)
        offs = np.where(np.repeat(stale, per_cust), np.maximum(offs, min_off), offs)
        odate = np.datetime64(as_of, "D") - offs.astype("timedelta64[D]")
        nlines = rng.choice([1, 2, 3, 4], size=m, p=[0.35, 0.3, 0.2, 0.15])
        ln_order = np.repeat(np.arange(1, m + 1), nlines)
        ln_prod = rng.integers(0, len(self.product_price), size=ln_order.size)
        cust_scale = np.repeat(scale[cust - 1] if m else scale[:0], nlines)
        qty = np.maximum(1, np.round(rng.lognormal(1.0, 0.6, size=ln_order.size) * cust_scale)).astype(int)
        qty = np.minimum(qty, 400)
        price = self.product_price[ln_prod]
        cost = self.product_cost[ln_prod]
        amount = np.round(qty * price, 2)
        status = np.where(rng.random(m) < 0.02, "cancelled", "delivered")

        # tomorrow's deliveries: downtown Helsinki customers, small loads
        n_due = min(self.n_down, 150)
        due_cust = np.sort(rng.choice(np.arange(1, self.n_down + 1), size=n_due, replace=False)) if n_due else \
            np.zeros(0, dtype=np.int64)
        due_prod = np.array([int(rng.integers(0, len(self.product_price))) for _ in due_cust], dtype=np.int64)
        due_qty = np.array([int(rng.integers(1, 6)) for _ in due_cust], dtype=np.int64)
        cust = np.concatenate([cust, due_cust])
        odate = np.concatenate([odate, np.full(n_due, np.datetime64(as_of, "D"))])
        ddate = np.concatenate([odate[:m] + np.timedelta64(2, "D"),
                                np.full(n_due, np.datetime64(as_of + timedelta(days=1), "D"))])
        status = np.concatenate([status, np.full(n_due, "confirmed")])
        ln_order = np.concatenate([ln_order, np.arange(m + 1, m + n_due + 1)])
        ln_prod = np.concatenate([ln_prod, due_prod])
        qty = np.concatenate([qty, due_qty])
        price = self.product_price[ln_prod]
        cost = self.product_cost[ln_prod]
        amount = np.concatenate([amount, np.round(due_qty * self.product_price[due_prod], 2)])
        mo = m + n_due
        tot_amount = np.bincount(ln_order, weights=amount, minlength=mo + 1)[1:]
        tot_cost = np.bincount(ln_order, weights=qty * cost, minlength=mo + 1)[1:]
        tot_load = np.bincount(ln_order, weights=qty * self.product_load[ln_prod], minlength=mo + 1)[1:]

        self._step(f"writing {mo:,} orders")
        ids = np.arange(1, mo + 1)
        address, geom = self.cust_delivery_address, self.cust_geom
        price_txt, cost_txt = _money(self.product_price), _money(self.product_cost)
        with _bulk_table(self.conn, "order_line"), _bulk_table(self.conn, "sales_order"):
            copy_columns(self.conn, "sales_order", {
                "id": ids, "number": lazy(lambda i: fields(b"SO", digits(i, 8)), ids),
                "customer_id": cust, "order_date": lazy(day_text, odate), "delivery_date": lazy(day_text, ddate),
                "status": status.astype("S9"), "total_amount": lazy(_money, tot_amount),
                "total_cost": lazy(_money, tot_cost), "total_load": np.round(tot_load).astype(np.int64),
                "delivery_address": lazy(lambda c: address[c - 1], cust),
                "delivery_geom": lazy(lambda c: geom[c - 1], cust)}, freeze=True)
            self._step(f"writing {ln_order.size:,} order lines")
            copy_columns(self.conn, "order_line", {
                "id": np.arange(1, ln_order.size + 1), "order_id": ln_order,
                "product_id": ln_prod + 1, "quantity": qty,
                "unit_price": lazy(lambda p: price_txt[p], ln_prod), "unit_cost": lazy(lambda p: cost_txt[p], ln_prod),
                "amount": lazy(_money, amount)}, freeze=True)
            self._step("order indexes and foreign keys")
        self.stats["orders"] = mo
        self.stats["order_lines"] = int(ln_order.size)

    def opportunities(self) -> None:
        """Opportunities (5% of the customer count, at most 50,000; 30% prospects not yet
        customers) with their stage history and development plan steps."""
        rng, n = self.rng, self.n
        k = max(20, min(n // 20, 50_000))
        self._step(f"writing {k:,} opportunities")
        stage_names = np.array(["lead", "qualified", "proposal", "negotiation", "won", "lost"])
        st = rng.choice(6, size=k, p=[0.25, 0.2, 0.18, 0.12, 0.15, 0.1])
        prob = np.array([10, 25, 50, 75, 100, 0])[st]
        status = np.where(st == 4, "won", np.where(st == 5, "lost", "open"))
        sources = np.array([c for c, _ in names.DICTIONARIES["opportunity_source"]])
        cust = rng.integers(1, n + 1, size=k)
        prospect = rng.random(k) < 0.3
        now = np.datetime64(datetime.combine(self.as_of, time(12)), "s")
        day = np.timedelta64(1, "D")
        created = now - rng.integers(5, 300, size=k) * day
        assignee = np.array(self.account_managers)[rng.integers(0, len(self.account_managers), size=k)]
        closed = np.minimum(created + rng.integers(10, 90, size=k) * day, now)
        prospect_name = names.company_names(rng, k)
        j = rng.integers(0, n, size=k)
        prospect_geom = ewkb_points(np.round(self.cust_lon[j] + 0.001, 6), self.cust_lat[j])
        idx = np.arange(k)
        products = np.array([p[1] for p in names.PRODUCTS])
        ts = timestamps_utc(created)
        copy_columns(self.conn, "opportunity", {
            "id": txt(idx + 1), "source": txt(sources[idx % len(sources)]),
            "customer_id": nullable(cust, prospect), "prospect_name": np.where(prospect, txt(prospect_name), NULL),
            "prospect_geom": null_where(prospect_geom, ~prospect),
            "summary": cat(txt(products[idx % len(products)]), " supply deal"),
            "contact_name": txt(names.person_names(rng, k)), "probability": txt(prob),
            "amount": _money(rng.lognormal(8.5, 1.0, size=k)), "stage": txt(stage_names[st]),
            "status": txt(status), "created_by": np.full(k, str(self.user_ids["sales"])),
            "assignee_id": txt(assignee), "assigned_at": ts, "created_at": ts,
            "closed_at": null_where(timestamps_utc(closed), status == "open")}, freeze=True)
        # stage history: lead → … → the current stage (won/lost after 1-4 open stages)
        open_steps = np.where(st < 4, st + 1, rng.integers(1, 5, size=k))
        path_len = np.where(st < 4, open_steps, open_steps + 1)
        opp = np.repeat(idx, path_len)
        pos = np.arange(opp.size) - np.repeat(np.cumsum(path_len) - path_len, path_len)
        to_stage = np.where(pos < np.repeat(open_steps, path_len), pos, np.repeat(st, path_len))
        gap = np.where(pos == 0, 0, rng.integers(3, 30, size=opp.size))
        total = np.cumsum(gap)
        days = total - np.repeat(total[np.cumsum(path_len) - path_len], path_len)  # since creation
        changed = np.minimum(created[opp] + days * day, now)
        copy_columns(self.conn, "opportunity_stage_change", {
            "id": txt(np.arange(1, opp.size + 1)), "opportunity_id": txt(opp + 1),
            "from_stage": np.where(pos == 0, NULL, txt(stage_names[np.roll(to_stage, 1)])),
            "to_stage": txt(stage_names[to_stage]), "changed_at": timestamps_utc(changed),
            "changed_by": np.full(opp.size, str(self.user_ids["sales"]))}, freeze=True)
        # development plan: 1-3 weekly steps from creation; past ones done with a result
        n_steps = rng.integers(1, 4, size=k)
        sopp = np.repeat(idx, n_steps)
        sj = np.arange(sopp.size) - np.repeat(np.cumsum(n_steps) - n_steps, n_steps)
        planned = created[sopp].astype("datetime64[D]") + 7 * (sj + 1) * day
        done = planned <= np.datetime64(self.as_of, "D")
        actions = np.array(names.PLAN_ACTIONS)
        results = np.array(names.PLAN_RESULTS)
        copy_columns(self.conn, "development_plan_step", {
            "id": txt(np.arange(1, sopp.size + 1)), "opportunity_id": txt(sopp + 1), "planned_on": txt(planned),
            "action": txt(actions[(sopp + sj) % len(actions)]),
            "result": np.where(done, txt(results[(sopp + sj) % len(results)]), NULL),
            "done_at": null_where(timestamps_utc(planned + np.timedelta64(15, "h")), ~done),
            "created_by": txt(assignee[sopp])}, freeze=True)
        self.stats["opportunities"] = k

    def plan_service_records(self) -> None:
        """Service records (10% of the customer count, at most 100,000) drawn before the
        customers are written, so each customer's satisfaction (the average of its rated
        records, rounded half up to 2 decimals) goes into the customer row itself."""
        rng, n = self.rng, self.n
        k = max(30, min(n // 10, 100_000))
        cust = rng.integers(1, n + 1, size=k)
        cust[:3] = 1  # the demo customer has some history
        status = rng.choice(["new", "assigned", "in_progress", "resolved", "archived"], size=k,
                            p=[0.06, 0.08, 0.08, 0.08, 0.7])
        now = np.datetime64(datetime.combine(self.as_of, time(12)), "us")
        hour = np.timedelta64(3_600_000_000, "us")
        created = now - rng.integers(2, 24 * 360, size=k) * hour
        agent = np.array(self.service_agents)[rng.integers(0, len(self.service_agents), size=k)]
        assigned = created + np.round(rng.gamma(2.0, 6.0, size=k) * 3.6e9).astype(np.int64) * np.timedelta64(1, "us")
        handled = assigned + np.round(rng.gamma(2.0, 20.0, size=k) * 3.6e9).astype(np.int64) * np.timedelta64(1, "us")
        archived = status == "archived"
        rating = np.where(archived, rng.choice([3, 4, 5], size=k, p=[0.25, 0.4, 0.35]), 0)
        reopen = archived & (rng.random(k) < 0.12)  # rated low once, reopened, then fixed
        low = rng.choice([1, 2], size=k)
        self.service = dict(k=k, cust=cust, status=status, created=created, agent=agent, assigned=assigned,
                            handled=handled, rating=rating, reopen=reopen, low=low)
        total = np.bincount(cust, weights=rating, minlength=n + 1)[1:].astype(np.int64)
        count = np.bincount(cust, weights=rating > 0, minlength=n + 1)[1:].astype(np.int64)
        self.satisfaction_x100 = np.where(count > 0, (200 * total + count) // np.maximum(2 * count, 1), 0)

    def service_records(self) -> None:
        s = self.service
        k, status = s["k"], s["status"]
        self._step(f"writing {k:,} service records")
        types = np.array([c for c, _ in names.DICTIONARIES["service_type"]])
        idx = np.arange(k)
        t = types[idx % len(types)]
        subject = np.array([names.service_subject(c, -1).removesuffix(" #0") for c in types])
        request = np.array([names.service_text(c, 0) for c in types])
        is_new = status == "new"
        is_handled = np.isin(status, ["resolved", "archived"])
        archived = status == "archived"
        rated_at = timestamps_utc(s["handled"] + np.timedelta64(5, "h"))
        copy_columns(self.conn, "service_record", {
            "id": txt(idx + 1), "type": txt(t), "customer_id": txt(s["cust"]),
            "subject": cat(txt(subject[idx % len(types)]), " #", idx + 1),
            "request_text": escape(request[idx % len(types)]), "status": txt(status),
            "creator_id": np.full(k, str(self.user_ids["account"])),
            "assignee_id": nullable(s["agent"], is_new),
            "assigned_by": np.where(is_new, NULL, str(self.user_ids["account"])),
            "assigned_at": null_where(timestamps_utc(s["assigned"]), is_new),
            "handling_notes": np.where(is_handled, "Checked on site.", ""),
            "handled_at": null_where(timestamps_utc(s["handled"]), ~is_handled),
            "result": np.where(is_handled, "Resolved.", NULL),
            "satisfaction": nullable(s["rating"], ~archived), "rated_at": null_where(rated_at, ~archived),
            "reopen_count": txt(s["reopen"].astype(int)), "archived_at": null_where(rated_at, ~archived),
            "created_at": timestamps_utc(s["created"])}, freeze=True)
        # ratings: the low first rating of a reopened record, then the final one
        low = np.flatnonzero(s["reopen"])
        final = np.flatnonzero(archived)
        rec = np.concatenate([low, final])
        when = np.concatenate([s["handled"][low] - np.timedelta64(30, "h"), s["handled"][final] + np.timedelta64(5, "h")])
        rate = np.concatenate([s["low"][low], s["rating"][final]])
        order = np.lexsort((np.concatenate([np.zeros(low.size), np.ones(final.size)]), rec))
        copy_columns(self.conn, "service_rating", {
            "id": txt(np.arange(1, rec.size + 1)), "service_record_id": txt(rec[order] + 1),
            "rating": txt(rate[order]), "rated_at": timestamps_utc(when[order])}, freeze=True)
        self.stats["service_records"] = k

    def roads_and_addresses(self) -> None:
        from geo_crm.routing.roads import store_segments
        with gzip.open(DATA / "helsinki_roads.csv.gz", "rt", encoding="utf-8") as f:
            segs = list(csv.DictReader(f))
        n = store_segments(self.conn, segs)
        self.stats["road_segments"] = n
        from geo_crm.geocoding.normalise import normalise_street
        rows = [(i, a["osm_type"], int(a["osm_id"]), a["street"], a["housenumber"], a["postcode"] or "",
                 a["city"] or "Helsinki", normalise_street(a["street"]), _ewkt(float(a["lon"]), float(a["lat"])))
                for i, a in enumerate(self.addresses, start=1)]
        _copy(self.conn, "address_point", ["id", "osm_type", "osm_id", "street", "housenumber", "postcode", "city",
                                           "street_norm", "geom"], rows)
        self.stats["address_points"] = len(rows)
