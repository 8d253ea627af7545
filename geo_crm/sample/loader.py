"""Deterministic sample data: a fictional Helsinki-based wholesale distributor selling
across Finland, on real geography (Natural Earth regions, GeoNames places, the
OpenStreetMap extract of central Helsinki).

Everything is generated from `seed` and `as_of` (the day the data ends on), so two
loads with the same arguments give the same rows. A load replaces all CRM data in one
transaction: a failure leaves the database as it was. Bulk rows go in with COPY and
area membership is computed set-based at the end (`crm_refresh_membership()`).
"""
from __future__ import annotations

import csv
from contextlib import contextmanager
import gzip
import io
import json
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import shape
from shapely.ops import nearest_points
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from geo_crm.sample import names
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


def _copy_frame(conn: Connection, table: str, df: "pd.DataFrame", chunk: int = 1_000_000) -> int:
    """COPY a DataFrame (columns named as the table's) in chunks; floats with 2 decimals."""
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cur:
        for start in range(0, len(df), chunk):
            buf = io.StringIO()
            df.iloc[start:start + chunk].to_csv(buf, header=False, index=False, float_format="%.2f", na_rep="\\N")
            buf.seek(0)
            cur.copy_expert(f"COPY {table} ({', '.join(df.columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buf)
    return len(df)


@contextmanager
def _bulk_table(conn: Connection, table: str):
    """Drop `table`'s foreign keys and secondary indexes for a bulk COPY and recreate
    them afterwards (one validating join and one sorted build instead of a check and an
    index insert per row). Runs inside the caller's transaction: all or nothing."""
    fks = conn.execute(text(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = CAST(:t AS regclass) AND contype = 'f'"), {"t": table}).all()
    idx = conn.execute(text(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = CAST(:t AS regclass) AND NOT x.indisprimary AND NOT x.indisunique"), {"t": table}).all()
    for name, _ in fks:
        conn.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
    for name, _ in idx:
        conn.execute(text(f'DROP INDEX "{name}"'))
    yield
    for _, ddl in idx:
        conn.execute(text(ddl))
    for name, ddl in fks:
        conn.execute(text(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {ddl}'))


def _ewkt(lon, lat) -> str:
    return f"SRID=4326;POINT({lon:.6f} {lat:.6f})"


def load_sample(engine: Engine, *, customers: int = 5000, seed: int = 42, as_of: date | None = None,
                if_empty: bool = False, log: Callable[[str], None] = print) -> dict[str, int]:
    """Replace all CRM data with the sample. Returns row counts; {} if skipped."""
    as_of = as_of or date.today()
    with engine.begin() as conn:
        if if_empty and conn.execute(text("SELECT EXISTS (SELECT 1 FROM customer)")).scalar():
            log("sample data already present: skipped (use `geo-crm sample load` to replace it)")
            return {}
        conn.execute(text("SET LOCAL geo_crm.bulk = 'on'"))
        conn.execute(text("SET LOCAL statement_timeout = 0"))
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        gen = _Generator(conn, np.random.default_rng(seed), customers, as_of, log)
        stats = gen.run()
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text("ANALYZE"))
    return stats


class _Generator:
    def __init__(self, conn: Connection, rng: np.random.Generator, n_customers: int, as_of: date, log):
        self.conn, self.rng, self.n, self.as_of, self.log = conn, rng, n_customers, as_of, log
        self.stats: dict[str, int] = {}

    def run(self) -> dict[str, int]:
        t0 = datetime.now()
        self.regions()
        self.places()
        self.dictionaries()
        self.branches()
        self.partners()
        self.territories()
        self.users_pre()
        self.customers()
        self.users_post()
        self.contacts()
        self.products()
        self.orders()
        self.opportunities()
        self.service_records()
        self.roads_and_addresses()
        self.log("computing area membership (regions, territories, service areas)")
        self.conn.execute(text("SELECT crm_refresh_membership()"))
        self.conn.execute(text(
            "UPDATE customer c SET satisfaction = s.avg FROM (SELECT customer_id, round(avg(satisfaction), 2) AS avg "
            "FROM service_record WHERE satisfaction IS NOT NULL GROUP BY customer_id) s WHERE s.customer_id = c.id"))
        self._advance_sequences()
        from geo_crm.churn.service import scan as churn_scan
        self.stats["churn_alerts"] = churn_scan(self.conn, as_of=self.as_of).new
        self.log(f"sample data generated in {(datetime.now() - t0).total_seconds():.1f} s")
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
        self.conn.execute(text("SELECT setval('territory_id_seq', (SELECT max(id) FROM territory))"))
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
        self.conn.execute(text("SELECT setval('app_user_id_seq', (SELECT max(id) FROM app_user))"))
        self.stats["users"] = len(self.user_ids) + 1

    # -- customers ----------------------------------------------------------------------------
    def customers(self) -> None:
        rng, n = self.rng, self.n
        n_down = min(len(self.addresses), max(1, int(round(n * 0.08))))
        n_rest = n - n_down
        # downtown Helsinki customers live at real OSM addresses
        down_idx = rng.choice(len(self.addresses), size=n_down, replace=False)
        down_idx.sort()
        # the rest around GeoNames places, weighted by population
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

        levels = rng.choice(["key", "major", "ordinary", "small"], size=n, p=[0.03, 0.12, 0.5, 0.35])
        statuses = rng.choice(["active", "prospect", "dormant", "lost"], size=n, p=[0.82, 0.08, 0.06, 0.04])
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
        self.levels, self.statuses = levels, statuses
        self.cust_lon = np.concatenate([np.array([float(self.addresses[i]["lon"]) for i in down_idx]), lon])
        self.cust_lat = np.concatenate([np.array([float(self.addresses[i]["lat"]) for i in down_idx]), lat])
        self.n_down = n_down
        self.cust_delivery: list[tuple[str, str]] = []

        def rows():
            for i in range(n):
                cid = i + 1
                if i < n_down:
                    a = self.addresses[down_idx[i]]
                    address, postcode, city = f"{a['street']} {a['housenumber']}", a["postcode"] or "", a["city"] or "Helsinki"
                    quality = "exact"
                else:
                    p = self.place_rows[place_idx[i - n_down]]
                    address = f"{names.STREETS[(cid * 31) % len(names.STREETS)]} {1 + (cid * 7) % 120}"
                    postcode, city, quality = f"{(cid * 7919) % 99999:05d}", p["name"], "address"
                person = kinds[i] == "person"
                name = names.person_name(rng) if person else names.company_name(rng)
                st = statuses[i]
                if i == 0:
                    st = "active"  # the demo customer login's own record
                ewkt = _ewkt(self.cust_lon[i], self.cust_lat[i])
                self.cust_delivery.append((f"{address}, {city}", ewkt))  # orders deliver here
                yield (cid, f"C{cid:07d}", name, kinds[i], industries[i], levels[i], st, credit[i],
                       int(employees[i]) if not person else None, address, postcode, city, "FI",
                       f"+358 {40 + cid % 10} {cid % 1000:03d} {cid % 10000:04d}",
                       f"info{cid}@example.fi", int(owners[i]) if st != "prospect" or cid % 2 else None,
                       ewkt, quality,
                       f"{start_h[i]:02d}:00", f"{min(start_h[i] + span_h[i], 20):02d}:00", int(service_min[i]),
                       f"{self.as_of - timedelta(days=int(age_days[i]))}T09:00:00+00:00")

        cols = ["id", "code", "name", "kind", "industry", "level", "status", "credit_rating", "employees", "address",
                "postcode", "city", "country", "phone", "email", "owner_id", "geom", "geocode_quality",
                "delivery_start", "delivery_end", "service_min", "created_at"]
        self.log(f"writing {n:,} customers")
        chunk = 200_000
        it = rows()
        done = 0
        while done < n:
            k = min(chunk, n - done)
            _copy(self.conn, "customer", cols, (next(it) for _ in range(k)))
            done += k
            if n > chunk:
                self.log(f"  customers {done:,}/{n:,}")
        self.stats["customers"] = n

    def contacts(self) -> None:
        rng, n = self.rng, self.n
        per = rng.choice([1, 1, 2, 3], size=n)
        cust = np.repeat(np.arange(1, n + 1), per)
        first = np.concatenate([[1], (np.diff(cust) != 0).astype(int)]) if cust.size else cust

        def rows():
            for k, (c, prim) in enumerate(zip(cust, first), start=1):
                g = "female" if k % 2 else "male"
                yield (k, int(c), names.person_name(rng, g), g, names.TITLES[k % len(names.TITLES)],
                       f"+358 9 {k % 1000:03d} {k % 10000:04d}", f"+358 50 {k % 1000:03d} {k % 10000:04d}",
                       f"contact{k}@example.fi", bool(prim))
        _copy(self.conn, "contact", ["id", "customer_id", "name", "gender", "title", "office_phone", "mobile_phone",
                                     "email", "is_primary"], rows())
        self.conn.execute(text("SELECT setval('contact_id_seq', (SELECT coalesce(max(id), 1) FROM contact))"))
        self.stats["contacts"] = int(cust.size)

    def products(self) -> None:
        rows = []
        for i, (name, cat, price) in enumerate(names.PRODUCTS, start=1):
            cost = round(price * (0.55 + 0.3 * ((i * 37) % 10) / 10), 2)
            rows.append((i, f"SKU-{i:04d}", name, cat, "pcs", price, cost, 1 + (i % 3)))
        _copy(self.conn, "product", ["id", "sku", "name", "category", "unit", "unit_price", "unit_cost", "load_units"], rows)
        self.conn.execute(text("SELECT setval('product_id_seq', (SELECT max(id) FROM product))"))
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
        per_cust = np.where(active, rng.poisson([lam[l] for l in self.levels]), 0)
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
        self.log(f"writing {m:,} orders and {int(nlines.sum()):,} order lines")
        ln_order = np.repeat(np.arange(1, m + 1), nlines)
        ln_prod = rng.integers(0, len(self.product_price), size=ln_order.size)
        cust_scale = np.repeat(scale[cust - 1] if m else scale[:0], nlines)
        qty = np.maximum(1, np.round(rng.lognormal(1.0, 0.6, size=ln_order.size) * cust_scale)).astype(int)
        qty = np.minimum(qty, 400)
        price = self.product_price[ln_prod]
        cost = self.product_cost[ln_prod]
        amount = np.round(qty * price, 2)
        tot_amount = np.bincount(ln_order, weights=amount, minlength=m + 1)[1:]
        tot_cost = np.bincount(ln_order, weights=qty * cost, minlength=m + 1)[1:]
        tot_load = np.bincount(ln_order, weights=qty * self.product_load[ln_prod], minlength=m + 1)[1:]
        status = np.where(rng.random(m) < 0.02, "cancelled", "delivered")

        ids = np.arange(1, m + 1)
        delivery = np.array(self.cust_delivery, dtype=object)
        with _bulk_table(self.conn, "order_line"), _bulk_table(self.conn, "sales_order"):
            _copy_frame(self.conn, "sales_order", pd.DataFrame({
                "id": ids, "number": np.char.add("SO", np.char.zfill(ids.astype(str), 8)), "customer_id": cust,
                "order_date": odate, "delivery_date": odate + np.timedelta64(2, "D"), "status": status,
                "total_amount": np.round(tot_amount, 2), "total_cost": np.round(tot_cost, 2),
                "total_load": tot_load.astype(np.int64), "delivery_address": delivery[cust - 1, 0],
                "delivery_geom": delivery[cust - 1, 1]}))
            _copy_frame(self.conn, "order_line", pd.DataFrame({
                "id": np.arange(1, ln_order.size + 1), "order_id": ln_order, "product_id": ln_prod + 1,
                "quantity": qty, "unit_price": price, "unit_cost": cost, "amount": amount}))
            # tomorrow's deliveries: downtown Helsinki customers, small loads
            n_due = min(self.n_down, 150)
            due_cust = rng.choice(np.arange(1, self.n_down + 1), size=n_due, replace=False) if n_due else []
            tomorrow = as_of + timedelta(days=1)
            rows, lines = [], []
            oid, lid = m + 1, ln_order.size + 1
            for c in sorted(int(x) for x in due_cust):
                p = int(rng.integers(0, len(self.product_price)))
                q = int(rng.integers(1, 6))
                amt = round(q * float(self.product_price[p]), 2)
                rows.append((oid, f"SO{oid:08d}", c, as_of.isoformat(), tomorrow.isoformat(), "confirmed", amt,
                             round(q * float(self.product_cost[p]), 2), q * int(self.product_load[p]),
                             *self.cust_delivery[c - 1]))
                lines.append((lid, oid, p + 1, q, f"{self.product_price[p]:.2f}", f"{self.product_cost[p]:.2f}", f"{amt:.2f}"))
                oid += 1
                lid += 1
            _copy(self.conn, "sales_order", ["id", "number", "customer_id", "order_date", "delivery_date", "status",
                                             "total_amount", "total_cost", "total_load", "delivery_address",
                                             "delivery_geom"], rows)
            _copy(self.conn, "order_line", ["id", "order_id", "product_id", "quantity", "unit_price", "unit_cost", "amount"],
                  lines)
        for seq, tbl in (("sales_order_id_seq", "sales_order"), ("order_line_id_seq", "order_line")):
            self.conn.execute(text(f"SELECT setval('{seq}', (SELECT coalesce(max(id), 1) FROM {tbl}))"))
        self.stats["orders"] = m + len(rows)
        self.stats["order_lines"] = int(ln_order.size) + len(lines)

    def opportunities(self) -> None:
        rng, n = self.rng, self.n
        k = max(20, min(n // 20, 50_000))
        stages = rng.choice(["lead", "qualified", "proposal", "negotiation", "won", "lost"], size=k,
                            p=[0.25, 0.2, 0.18, 0.12, 0.15, 0.1])
        prob = {"lead": 10, "qualified": 25, "proposal": 50, "negotiation": 75, "won": 100, "lost": 0}
        sources = [c for c, _ in names.DICTIONARIES["opportunity_source"]]
        cust = rng.integers(1, n + 1, size=k)
        prospect = rng.random(k) < 0.3
        now = datetime.combine(self.as_of, time(12), tzinfo=timezone.utc)
        opp, steps, changes = [], [], []
        sid = chid = 1
        order = ["lead", "qualified", "proposal", "negotiation"]
        for i in range(k):
            st = stages[i]
            created = now - timedelta(days=int(rng.integers(5, 300)))
            assignee = int(self.account_managers[int(rng.integers(0, len(self.account_managers)))])
            status = "won" if st == "won" else "lost" if st == "lost" else "open"
            closed = (created + timedelta(days=int(rng.integers(10, 90)))) if status != "open" else None
            if closed and closed > now:
                closed = now
            c = None if prospect[i] else int(cust[i])
            pname = names.company_name(rng) if prospect[i] else None
            pgeom = None
            if prospect[i]:
                j = int(rng.integers(0, n))
                pgeom = _ewkt(self.cust_lon[j] + 0.001, self.cust_lat[j])
            opp.append((i + 1, sources[i % len(sources)], c, pname, pgeom,
                        f"{names.PRODUCTS[i % len(names.PRODUCTS)][1]} supply deal", names.person_name(rng),
                        prob[st], round(float(rng.lognormal(8.5, 1.0)), 2), st, status,
                        self.user_ids["sales"], assignee, created.isoformat(), created.isoformat(),
                        closed.isoformat() if closed else None))
            # stage history
            path = order[: order.index(st) + 1] if st in order else order[: int(rng.integers(1, 5))] + [st]
            t = created
            prev = None
            for s_ in path:
                changes.append((chid, i + 1, prev, s_, t.isoformat(), self.user_ids["sales"]))
                chid += 1
                prev = s_
                t = min(now, t + timedelta(days=int(rng.integers(3, 30))))
            for j in range(int(rng.integers(1, 4))):
                d = (created + timedelta(days=7 * (j + 1))).date()
                done = d <= self.as_of
                steps.append((sid, i + 1, d.isoformat(), names.PLAN_ACTIONS[(i + j) % len(names.PLAN_ACTIONS)],
                              names.PLAN_RESULTS[(i + j) % len(names.PLAN_RESULTS)] if done else None,
                              datetime.combine(d, time(15), tzinfo=timezone.utc).isoformat() if done else None, assignee))
                sid += 1
        _copy(self.conn, "opportunity", ["id", "source", "customer_id", "prospect_name", "prospect_geom", "summary",
                                         "contact_name", "probability", "amount", "stage", "status", "created_by",
                                         "assignee_id", "assigned_at", "created_at", "closed_at"], opp)
        _copy(self.conn, "opportunity_stage_change", ["id", "opportunity_id", "from_stage", "to_stage", "changed_at",
                                                      "changed_by"], changes)
        _copy(self.conn, "development_plan_step", ["id", "opportunity_id", "planned_on", "action", "result", "done_at",
                                                   "created_by"], steps)
        for seq, tbl in (("opportunity_id_seq", "opportunity"), ("opportunity_stage_change_id_seq", "opportunity_stage_change"),
                         ("development_plan_step_id_seq", "development_plan_step")):
            self.conn.execute(text(f"SELECT setval('{seq}', (SELECT coalesce(max(id), 1) FROM {tbl}))"))
        self.stats["opportunities"] = k

    def service_records(self) -> None:
        rng, n = self.rng, self.n
        k = max(30, min(n // 10, 100_000))
        types = [c for c, _ in names.DICTIONARIES["service_type"]]
        now = datetime.combine(self.as_of, time(12), tzinfo=timezone.utc)
        cust = rng.integers(1, n + 1, size=k)
        cust[:3] = 1  # the demo customer has some history
        status = rng.choice(["new", "assigned", "in_progress", "resolved", "archived"], size=k,
                            p=[0.06, 0.08, 0.08, 0.08, 0.7])
        rows, ratings = [], []
        rid = 1
        for i in range(k):
            created = now - timedelta(hours=int(rng.integers(2, 24 * 360)))
            st = status[i]
            agent = int(self.service_agents[int(rng.integers(0, len(self.service_agents)))]) if st != "new" else None
            assigned = created + timedelta(hours=float(rng.gamma(2.0, 6.0))) if st != "new" else None
            handled = assigned + timedelta(hours=float(rng.gamma(2.0, 20.0))) if st in ("resolved", "archived") else None
            rating = None
            reopen = 0
            if st == "archived":
                rating = int(rng.choice([3, 4, 5], p=[0.25, 0.4, 0.35]))
                if rng.random() < 0.12:  # rated low once, reopened, then fixed
                    reopen = 1
                    ratings.append((rid, i + 1, int(rng.choice([1, 2])), (handled - timedelta(hours=30)).isoformat()))
                    rid += 1
                ratings.append((rid, i + 1, rating, (handled + timedelta(hours=5)).isoformat()))
                rid += 1
            t = types[i % len(types)]
            rows.append((i + 1, t, int(cust[i]), names.service_subject(t, i), names.service_text(t, i), st,
                         self.user_ids["account"], agent,
                         self.user_ids["account"] if agent else None, assigned.isoformat() if assigned else None,
                         "Checked on site." if handled else "", handled.isoformat() if handled else None,
                         "Resolved." if handled else None, rating,
                         (handled + timedelta(hours=5)).isoformat() if rating else None, reopen,
                         (handled + timedelta(hours=5)).isoformat() if st == "archived" else None,
                         created.isoformat()))
        _copy(self.conn, "service_record", ["id", "type", "customer_id", "subject", "request_text", "status",
                                            "creator_id", "assignee_id", "assigned_by", "assigned_at", "handling_notes",
                                            "handled_at", "result", "satisfaction", "rated_at", "reopen_count",
                                            "archived_at", "created_at"], rows)
        _copy(self.conn, "service_rating", ["id", "service_record_id", "rating", "rated_at"], ratings)
        for seq, tbl in (("service_record_id_seq", "service_record"), ("service_rating_id_seq", "service_rating")):
            self.conn.execute(text(f"SELECT setval('{seq}', (SELECT coalesce(max(id), 1) FROM {tbl}))"))
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
