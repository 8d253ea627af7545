"""Concurrency on a live threaded server (real HTTP, real transactions, committed data):
optimistic locking under simultaneous edits, concurrent route plans for the same branch
and date, and concurrent imports of overlapping customer codes. Everything created here
is removed at the end of each test."""
from __future__ import annotations

import random
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import AS_OF

N_CLIENTS = 8


@pytest.fixture(scope="module")
def sql(database_url):
    e = create_engine(database_url, pool_size=2)
    yield e
    e.dispose()


def _etag_version(resp) -> int:
    return int(resp.headers["ETag"].strip('W/"'))


@pytest.fixture()
def counter_customer(http, sql):
    code = f"CC-{secrets.token_hex(3).upper()}"
    r = http("admin").post("/api/v1/customers", json={"code": code, "name": "Concurrency Oy", "notes": "counter=0",
                                                     "lon": 24.94, "lat": 60.17})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    yield cid
    with sql.begin() as c:
        c.execute(text("DELETE FROM customer WHERE id = :i"), {"i": cid})


def _counter(feature: dict) -> int:
    return int(feature["properties"]["notes"].split("=")[1])


def test_simultaneous_if_match_exactly_one_wins(http, counter_customer):
    """All clients read the same version, then PATCH at the same instant: one 200, the rest 412."""
    url = f"/api/v1/customers/{counter_customer}"
    clients = [http("admin") for _ in range(N_CLIENTS)]
    v0 = _etag_version(clients[0].get(url))
    gate = threading.Barrier(N_CLIENTS)

    def edit(i):
        gate.wait()
        return clients[i].patch(url, json={"notes": f"counter={i + 1}"}, headers={"If-Match": f'"{v0}"'})

    with ThreadPoolExecutor(N_CLIENTS) as ex:
        res = list(ex.map(edit, range(N_CLIENTS)))
    codes = sorted(r.status_code for r in res)
    assert codes == [200] + [412] * (N_CLIENTS - 1), [(r.status_code, r.text[:200]) for r in res]
    for r in res:
        if r.status_code == 412:
            assert r.json()["error"]["code"] == "conflict"
    winner = next(r for r in res if r.status_code == 200)
    final = clients[0].get(url)
    assert _etag_version(final) == v0 + 1
    assert final.json()["properties"]["notes"] == winner.json()["properties"]["notes"]


def test_read_modify_write_with_retries_loses_no_update(http, counter_customer, sql):
    """Each client increments a counter in `notes` K times, re-reading and retrying on 412.
    The final counter equals the number of successful writes, and every version between
    the first and the last was produced by exactly one successful PATCH."""
    url = f"/api/v1/customers/{counter_customer}"
    per_client = 4
    clients = [http("admin") for _ in range(N_CLIENTS)]
    v_start = _etag_version(clients[0].get(url))
    log: list[tuple[int, int]] = []          # (version read, status)
    lock = threading.Lock()

    def worker(i):
        c, done, conflicts = clients[i], 0, 0
        while done < per_client:
            assert conflicts < 200, "no progress"
            r = c.get(url)
            v, n = _etag_version(r), _counter(r.json())
            w = c.patch(url, json={"notes": f"counter={n + 1}"}, headers={"If-Match": f'"{v}"'})
            with lock:
                log.append((v, w.status_code))
            if w.status_code == 200:
                assert _etag_version(w) == v + 1
                done += 1
            else:
                assert w.status_code == 412, w.text
                conflicts += 1
        return conflicts

    with ThreadPoolExecutor(N_CLIENTS) as ex:
        conflicts = sum(ex.map(worker, range(N_CLIENTS)))
    total = N_CLIENTS * per_client
    final = clients[0].get(url)
    assert _counter(final.json()) == total
    assert _etag_version(final) == v_start + total
    won = sorted(v for v, st in log if st == 200)
    assert won == list(range(v_start, v_start + total))      # exactly one success per version
    assert conflicts == sum(1 for _, st in log if st == 412)
    assert conflicts > 0, "the clients never raced: the test proved nothing"
    # the audit trail has one update per successful write
    with sql.connect() as c:
        n = c.execute(text("SELECT count(*) FROM audit_log WHERE entity = 'customer' AND entity_id = :i"
                           " AND action = 'update'"), {"i": str(counter_customer)}).scalar()
    assert n >= total


# -- route plans --------------------------------------------------------------------------
def _plan_consistent(d: dict, expected_customers: set[int]) -> None:
    assert d["status"] == "planned", d.get("error")
    stops = [s for r in d["routes"] for s in r["stops"]] + d["unassigned"]
    ids = [s["id"] for s in stops]
    assert len(ids) == len(set(ids))
    custs = [s["customer_id"] for s in stops]
    assert sorted(custs) == sorted(expected_customers)
    for r in d["routes"]:
        assert [s["seq"] for s in r["stops"]] == list(range(1, len(r["stops"]) + 1))
        assert r["stops"], "a saved route has stops"


def test_concurrent_route_plans_same_branch_and_date(http, sql):
    """Four plans for the same branch and date at once (two in-request, two in the
    background executor): every plan ends complete with each order's customer exactly once,
    and no stop row belongs to another plan."""
    day = (AS_OF + timedelta(days=1)).isoformat()
    body = {"date": day, "branch": "BR-HEL", "time_limit_s": 1, "mode": "haversine", "seed": 3}
    clients = [http("logistics") for _ in range(4)]
    gate = threading.Barrier(4)

    def plan(i):
        gate.wait()
        return clients[i].post("/api/v1/routes/plan", json={**body, "wait": i < 2, "name": f"race-{i}"})

    with ThreadPoolExecutor(4) as ex:
        res = list(ex.map(plan, range(4)))
    ids = []
    try:
        for r in res:
            assert r.status_code in (201, 202), r.text
            ids.append(r.json()["id"])
        details = {}
        for pid in ids:
            for _ in range(240):
                d = clients[0].get(f"/api/v1/routes/{pid}").json()
                if d["status"] in ("planned", "failed"):
                    break
                threading.Event().wait(0.25)
            details[pid] = d
        expected = {s["customer_id"] for s in next(iter(details.values()))["unassigned"]} | {
            s["customer_id"] for r in next(iter(details.values()))["routes"] for s in r["stops"]}
        assert expected, "the branch has orders due that day"
        for d in details.values():
            _plan_consistent(d, expected)
        with sql.connect() as c:
            bad = c.execute(text(
                "SELECT count(*) FROM route_stop s JOIN delivery_route r ON r.id = s.route_id"
                " WHERE s.plan_id = ANY(:ids) AND r.plan_id <> s.plan_id"), {"ids": ids}).scalar()
            per_plan = dict(c.execute(text("SELECT plan_id, count(*) FROM route_stop WHERE plan_id = ANY(:ids)"
                                           " GROUP BY plan_id"), {"ids": ids}).all())
        assert bad == 0
        assert all(per_plan[p] == len(expected) for p in ids)
    finally:
        with sql.begin() as c:
            c.execute(text("DELETE FROM delivery_plan WHERE id = ANY(:ids)"), {"ids": ids})


# -- imports ------------------------------------------------------------------------------
def _csv(prefix: str, lo: int, hi: int, tag: str, rng: random.Random) -> bytes:
    rows = ["code,name,address,postcode,city,level,lat,lon"]
    for k in range(lo, hi):
        lat, lon = rng.uniform(60.0, 62.5), rng.uniform(22.0, 28.0)
        rows.append(f"{prefix}{k:04d},Race {tag} {k},Testikatu {k},00100,Testila,ordinary,{lat:.5f},{lon:.5f}")
    return ("\n".join(rows) + "\n").encode()


def test_concurrent_imports_of_overlapping_codes(http, sql):
    """Four imports whose customer codes overlap, started together. Each import is all or
    nothing; a refused one succeeds on retry. Afterwards: one row per code, values from
    exactly one file, and stored membership (region, territories, service branch) equal to
    a fresh ST_Intersects computation."""
    prefix = f"IR{secrets.token_hex(2).upper()}-"
    rng = random.Random(5)
    files = [(_csv(prefix, i * 40, i * 40 + 80, f"f{i}", rng), f"f{i}") for i in range(4)]  # 50% overlap
    clients = [http("admin") for _ in range(4)]
    gate = threading.Barrier(4)

    def run(i):
        gate.wait()
        return clients[i].post("/api/v1/import/customers", files={"file": (f"race{i}.csv", files[i][0], "text/csv")})

    try:
        with ThreadPoolExecutor(4) as ex:
            res = list(ex.map(run, range(4)))
        refused = []
        for i, r in enumerate(res):
            assert r.status_code in (200, 422, 503), r.text[:500]
            if r.status_code != 200:
                refused.append(i)
            else:
                assert r.json()["status"] == "imported"
        for i in refused:       # the operation can be retried once the others are done
            r = clients[i].post("/api/v1/import/customers", files={"file": (f"retry{i}.csv", files[i][0], "text/csv")})
            assert r.status_code == 200 and r.json()["status"] == "imported", r.text[:500]
        with sql.connect() as c:
            rows = c.execute(text("SELECT code, name FROM customer WHERE code LIKE :p"), {"p": prefix + "%"}).all()
            codes = [r.code for r in rows]
            assert len(codes) == len(set(codes)) == 200
            for code, name in rows:
                k = int(code[len(prefix):])
                owners = [tag for i, (_, tag) in enumerate(files) if i * 40 <= k < i * 40 + 80]
                assert name.split()[1] in owners
            mismatch = c.execute(text("""
                WITH mine AS (SELECT id, geom, region_id, service_branch_id FROM customer WHERE code LIKE :p)
                SELECT
                  (SELECT count(*) FROM mine WHERE region_id IS DISTINCT FROM crm_region_for(geom)),
                  (SELECT count(*) FROM mine WHERE service_branch_id IS DISTINCT FROM crm_service_branch_for(geom)),
                  (SELECT count(*) FROM (
                     (SELECT ct.customer_id, ct.territory_id FROM customer_territory ct JOIN mine m ON m.id = ct.customer_id
                      EXCEPT SELECT m.id, t.id FROM mine m JOIN territory t ON ST_Intersects(t.geom, m.geom))
                     UNION ALL
                     (SELECT m.id, t.id FROM mine m JOIN territory t ON ST_Intersects(t.geom, m.geom)
                      EXCEPT SELECT ct.customer_id, ct.territory_id FROM customer_territory ct JOIN mine m
                        ON m.id = ct.customer_id)) d)
            """), {"p": prefix + "%"}).one()
            assert tuple(mismatch) == (0, 0, 0)
            in_terr = c.execute(text("SELECT count(*) FROM customer_territory ct JOIN customer c ON c.id = ct.customer_id"
                                     " WHERE c.code LIKE :p"), {"p": prefix + "%"}).scalar()
            assert in_terr > 0, "some imported customers fall in a territory (otherwise the check is empty)"
    finally:
        with sql.begin() as c:
            c.execute(text("DELETE FROM customer WHERE code LIKE :p"), {"p": prefix + "%"})
