"""Delivery planning through the database: feasibility of every returned plan, brute-force
optimality on tiny instances, bad input, permissions, manual moves and re-planning."""
from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy import text

from geo_crm.routing import persist, planner
from geo_crm.routing.planner import PlanRequest, StopOverride
from geo_crm.routing.problem import UNREACHABLE
from geo_crm.routing.solver import check_solution
from geo_crm.security.scope import Scope
from tests.conftest import AS_OF

TOMORROW = AS_OF + timedelta(days=1)
SYSTEM = Scope.system()


def assert_feasible(res: planner.PlanResult) -> None:
    """check_solution plus independent checks on the planner's own output."""
    if res.solution is not None:
        assert check_solution(res.problem, res.solution) == []
        assert res.solution.feasible, res.solution.violations
    keys = [s.info.key for r in res.routes for s in r.stops] + [u.info.key for u in res.unassigned]
    assert sorted(keys) == sorted(s.key for s in res.prepared.stops), "each stop once: routed or unassigned"
    for u in res.unassigned:
        assert u.reason in ("capacity", "time_window", "out_of_reach", "not_selected", "no_location")
    for r in res.routes:
        assert r.stops
        assert sum(s.info.demand for s in r.stops) == r.load <= r.vehicle.capacity
        assert r.start_s >= r.vehicle.shift_start_s and r.end_s <= r.vehicle.shift_end_s
        assert r.end_s - r.start_s <= r.vehicle.max_duration_s
        prev = r.start_s
        for k, s in enumerate(r.stops, start=1):
            assert s.seq == k
            assert s.info.tw_start_s <= s.start_s <= s.info.tw_end_s, "service starts inside the window"
            assert s.arrival_s >= prev and s.start_s >= s.arrival_s, "ETAs increase along the route"
            assert s.departure_s == s.start_s + s.info.service_s
            prev = s.departure_s
        assert r.end_s >= prev
        assert len([v for v in res.prepared.vehicles if v.id == r.vehicle.id]) == 1
    used = [r.vehicle.id for r in res.routes]
    assert len(used) == len(set(used)), "a vehicle drives one route"


def plan(session, scope=SYSTEM, **kw) -> planner.PlanResult:
    kw.setdefault("plan_date", TOMORROW)
    kw.setdefault("branch_ids", [1])
    kw.setdefault("time_limit_s", 1)
    return planner.compute(session.connection(), planner.prepare(session, scope, PlanRequest(**kw)))


def helsinki_customers(session, n: int, offset: int = 0) -> list[int]:
    return list(session.execute(text(
        "SELECT id FROM customer WHERE service_branch_id = 1 AND geom IS NOT NULL "
        "ORDER BY id OFFSET :o LIMIT :n"), {"n": n, "o": offset}).scalars())


def count_plans(session) -> tuple[int, int, int]:
    return tuple(session.execute(text(
        "SELECT (SELECT count(*) FROM delivery_plan), (SELECT count(*) FROM delivery_route), "
        "(SELECT count(*) FROM route_stop)")).one())


# ----------------------------------------------------------------------------- planning

def test_tomorrows_helsinki_orders_plan_on_the_road_network(db_session):
    res = plan(db_session)
    assert res.mode == "network"
    n_orders = db_session.execute(text(
        "SELECT count(*) FROM sales_order o JOIN customer c ON c.id = o.customer_id "
        "WHERE o.delivery_date = :d AND o.status = 'confirmed' AND c.service_branch_id = 1"),
        {"d": TOMORROW}).scalar_one()
    assert n_orders > 10 and len(res.prepared.stops) == n_orders
    assert res.routes
    assert_feasible(res)
    # road-following geometry: many more vertices than stops, length close to the driven distance
    from shapely import wkt
    from pyproj import Geod
    for r in res.routes:
        line = wkt.loads(r.wkt)
        assert len(line.coords) > len(r.stops) + 2
        length = Geod(ellps="WGS84").geometry_length(line)
        assert abs(length - r.distance_m) <= 0.1 * r.distance_m + 50, (length, r.distance_m)


def test_haversine_mode_and_multi_depot(db_session):
    res = plan(db_session, branch_ids=[1, 2], source="filter", customer_filter={"branch_id": 2},
               mode="auto", time_limit_s=1)
    assert res.mode == "haversine"        # branch 2 lies far outside the Helsinki extract
    assert_feasible(res)
    assert {d.branch_id for d in res.prepared.depots} == {1, 2}


def _brute_force(prob, vehicles: list[int]) -> int:
    """Cheapest feasible assignment of all stops to the given vehicle types (each one
    vehicle), trying every split and every order."""
    D, n = len(prob.depots), len(prob.stops)
    dist, dur = prob.distance_m, prob.duration_s

    def route_cost(vt_i, order):
        vt = prob.vehicle_types[vt_i]
        if not order:
            return 0
        if sum(prob.stops[i].demand for i in order) > vt.capacity:
            return None
        dep = prob.depots[vt.depot]
        early, late = max(vt.shift_start_s, dep.tw_start_s), min(vt.shift_end_s, dep.tw_end_s)
        first = D + order[0]
        start = max(early, prob.stops[order[0]].tw_start_s - int(dur[vt.depot, first]))
        t, prev, cost = start, vt.depot, 0
        for i in order:
            node = D + i
            if dist[prev, node] >= UNREACHABLE:
                return None
            t = max(t + int(dur[prev, node]), prob.stops[i].tw_start_s)
            if t > prob.stops[i].tw_end_s:
                return None
            t += prob.stops[i].service_s
            cost += int(dist[prev, node])
            prev = node
        t += int(dur[prev, vt.depot])
        if t > late or t - start > vt.max_duration_s:
            return None
        return cost + int(dist[prev, vt.depot])

    best = None
    for split in itertools.product(range(len(vehicles)), repeat=n):
        parts = [[i for i in range(n) if split[i] == k] for k in range(len(vehicles))]
        total = 0
        for k, part in enumerate(parts):
            options = [route_cost(vehicles[k], list(p)) for p in itertools.permutations(part)]
            options = [o for o in options if o is not None]
            if not options:
                total = None
                break
            total += min(options)
        if total is not None and (best is None or total < best):
            best = total
    return best


@pytest.mark.parametrize("n_stops,n_vehicles,windows", [(5, 1, True), (6, 2, False), (7, 1, False)])
def test_tiny_plans_are_optimal(db_session, n_stops, n_vehicles, windows):
    ids = helsinki_customers(db_session, n_stops, offset=3 * n_stops)
    caps = db_session.execute(text("SELECT capacity FROM vehicle WHERE branch_id = 1 AND active ORDER BY id "
                                   "LIMIT :n"), {"n": n_vehicles}).scalars().all()
    demand = max(1, sum(caps) // (n_stops + 1)) if n_vehicles > 1 else 1
    overrides = []
    for k, cid in enumerate(ids):
        o = StopOverride(customer_id=cid, demand=demand, service_min=5, tw_start="07:00", tw_end="16:00")
        if windows and k < 3:          # a few tight windows force an order
            o.tw_start, o.tw_end = [("07:00", "07:30"), ("09:00", "09:20"), ("08:00", "08:30")][k]
        overrides.append(o)
    res = plan(db_session, source="customers", customer_ids=ids, stops=overrides, mode="haversine",
               max_vehicles=n_vehicles, time_limit_s=3, speed_kmh=30)
    assert_feasible(res)
    assert not res.unassigned
    best = _brute_force(res.problem, list(range(n_vehicles)))
    assert best is not None
    assert res.solution.cost == best


def test_plan_is_deterministic_for_a_seed(db_session):
    ids = helsinki_customers(db_session, 12)
    a = plan(db_session, source="customers", customer_ids=ids, mode="haversine", seed=5)
    b = plan(db_session, source="customers", customer_ids=ids, mode="haversine", seed=5)
    assert [[s.info.key for s in r.stops] for r in a.routes] == [[s.info.key for s in r.stops] for r in b.routes]


def test_optional_low_priority_stop_far_away_is_not_selected(db_session):
    ids = helsinki_customers(db_session, 4)
    far = db_session.execute(text("SELECT id FROM customer WHERE geom IS NOT NULL AND service_branch_id <> 1 "
                                  "ORDER BY ST_Y(geom) DESC LIMIT 1")).scalar_one()
    res = plan(db_session, source="customers", customer_ids=ids + [far], mode="haversine",
               stops=[StopOverride(customer_id=far, required=False, priority=0)])
    assert_feasible(res)
    [u] = res.unassigned
    assert u.info.customer_id == far and u.reason in ("not_selected", "time_window")


# ----------------------------------------------------------------------------- bad input

def test_demand_above_capacity_and_impossible_window_are_reported(db_session):
    ids = helsinki_customers(db_session, 4)
    res = plan(db_session, source="customers", customer_ids=ids, mode="haversine",
               stops=[StopOverride(customer_id=ids[0], demand=100_000),
                      StopOverride(customer_id=ids[1], tw_start="03:00", tw_end="04:00")])  # before every shift
    assert_feasible(res)
    reasons = {u.info.customer_id: u.reason for u in res.unassigned}
    assert reasons == {ids[0]: "capacity", ids[1]: "time_window"}


def test_orders_without_coordinates_come_back_no_location(db_session):
    cid = db_session.execute(text(
        "SELECT c.id FROM sales_order o JOIN customer c ON c.id = o.customer_id WHERE o.delivery_date = :d "
        "AND c.service_branch_id = 1 ORDER BY c.id LIMIT 1"), {"d": TOMORROW}).scalar_one()
    db_session.execute(text("UPDATE sales_order SET delivery_geom = NULL WHERE customer_id = :c"), {"c": cid})
    db_session.execute(text("UPDATE customer SET geom = NULL, geocode_quality = 'none' WHERE id = :c"), {"c": cid})
    # the branch keeps serving the customer (assigned by hand) while its address is re-geocoded
    db_session.execute(text("UPDATE customer SET service_branch_id = 1 WHERE id = :c"), {"c": cid})
    assert db_session.execute(text("SELECT service_branch_id FROM customer WHERE id = :c"), {"c": cid}).scalar() == 1
    res = plan(db_session, time_limit_s=1)
    assert_feasible(res)
    assert any(u.info.customer_id == cid and u.reason == "no_location" for u in res.unassigned)
    p = persist.create_plan(db_session, res.prepared.request, user_id=None)
    persist.save_result(db_session, p, res)           # an unlocated stop is stored too
    d = persist.plan_detail(db_session, SYSTEM, p.id)
    assert any(s["customer_id"] == cid and s["unassigned_reason"] == "no_location" and s["lon"] is None
               for s in d["unassigned"])


@pytest.mark.parametrize("body,status,field", [
    ({"branch": "NOPE"}, 404, "branch"),
    ({"branch": "BR-HEL", "max_vehicles": 0}, 422, "vehicles"),
    ({"branch": "BR-HEL", "source": "customers", "customer_ids": [999999]}, 422, "customer_ids"),
    ({"branch": "BR-HEL", "source": "customers", "customer_ids": "NOLOC"}, 422, "customer_ids"),
    ({"branch": "BR-HEL", "source": "customers", "customer_ids": "HEL2",
      "stops": [{"customer_id": "HEL0", "tw_start": "14:00", "tw_end": "09:00"}]}, 422, "stops.0"),
    ({"branch": "BR-HEL", "time_limit_s": 0}, 422, "time_limit_s"),
    ({"branch": "BR-HEL", "mode": "teleport"}, 422, "mode"),
    ({"branch": "BR-HEL", "bogus": 1}, 422, "bogus"),
])
def test_bad_input_is_a_clear_4xx_and_writes_nothing(db_session, api, body, status, field):
    ids = helsinki_customers(db_session, 2)
    noloc = ids[1]
    db_session.execute(text("UPDATE customer SET geom = NULL, geocode_quality = 'none' WHERE id = :c"), {"c": noloc})
    body = dict(body)
    if body.get("customer_ids") == "NOLOC":
        body["customer_ids"] = [ids[0], noloc]
    elif body.get("customer_ids") == "HEL2":
        body["customer_ids"] = [ids[0]]
        body["stops"] = [{**body["stops"][0], "customer_id": ids[0]}]
    before = count_plans(db_session)
    r = api("admin").post("/api/v1/routes/plan", json={"date": TOMORROW.isoformat(), "wait": True, **body})
    assert r.status_code == status, r.get_json()
    err = r.get_json()["error"]
    assert err["message"]
    assert any(f["field"].startswith(field) for f in err.get("fields", [])), err
    assert count_plans(db_session) == before


def test_branch_without_active_vehicles_is_refused(db_session, api):
    db_session.execute(text("UPDATE vehicle SET active = false WHERE branch_id = 2"))
    r = api("admin").post("/api/v1/routes/plan", json={"date": TOMORROW.isoformat(), "branch": 2, "wait": True})
    assert r.status_code == 422
    assert "zero vehicles" in r.get_json()["error"]["message"]


# ----------------------------------------------------------------------------- API, roles

def _plan_api(api, user="admin", **kw):
    body = {"date": TOMORROW.isoformat(), "branch": "BR-HEL", "time_limit_s": 1, "wait": True, **kw}
    r = api(user).post("/api/v1/routes/plan", json=body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_api_plan_get_list_and_stored_rows(db_session, api):
    head = _plan_api(api, "logistics")
    assert head["status"] == "planned" and head["summary"]["mode"] == "network"
    d = api("logistics").get(f"/api/v1/routes/{head['id']}").get_json()
    assert d["routes"] and all(r["geometry"]["type"] == "LineString" for r in d["routes"])
    seen = [s["id"] for r in d["routes"] for s in r["stops"]] + [s["id"] for s in d["unassigned"]]
    assert len(seen) == len(set(seen)) == head["summary"]["stops"]
    for r in d["routes"]:
        etas = [s["eta"] for s in r["stops"]]
        assert etas == sorted(etas)
        assert sum(s["demand"] for s in r["stops"]) == r["load"]
    assert head["id"] in [p["id"] for p in api("executive").get("/api/v1/routes").get_json()["items"]]
    rows = db_session.execute(text("SELECT count(*) FROM route_stop WHERE plan_id = :p AND route_id IS NOT NULL "
                                   "AND eta IS NOT NULL"), {"p": head["id"]}).scalar_one()
    assert rows == head["summary"]["served"]


def test_roles_and_branch_visibility(db_session, api):
    r = api("logistics").post("/api/v1/routes/plan", json={"date": TOMORROW.isoformat(), "branch": 2, "wait": True})
    assert r.status_code == 403
    assert api("executive").post("/api/v1/routes/plan", json={"date": TOMORROW.isoformat(),
                                                                "branch": 1}).status_code == 403
    assert api("sales").get("/api/v1/routes").status_code == 403
    other = _plan_api(api, "admin", branch=2, mode="haversine")
    assert api("logistics").get(f"/api/v1/routes/{other['id']}").status_code == 404
    assert api("logistics").get(f"/api/v1/routes/{other['id']}/export?format=gpx").status_code == 404
    assert other["id"] not in [p["id"] for p in api("logistics").get("/api/v1/routes").get_json()["items"]]
    assert api("executive").get(f"/api/v1/routes/{other['id']}").status_code == 200


def test_manual_move_recomputes_and_flags_violations(db_session, api):
    head = _plan_api(api, "logistics")
    d = api("logistics").get(f"/api/v1/routes/{head['id']}").get_json()
    assert len(d["routes"]) >= 2
    a, b = d["routes"][0], d["routes"][1]
    moving = a["stops"][0]
    r = api("logistics").patch(f"/api/v1/routes/{head['id']}/stops",
                               json={"moves": [{"stop_id": moving["id"], "route_id": b["id"], "position": 1}]},
                               headers={"If-Match": f'"{d["version"]}"'})
    assert r.status_code == 200, r.get_json()
    d2 = r.get_json()
    a2 = next(x for x in d2["routes"] if x["id"] == a["id"])
    b2 = next(x for x in d2["routes"] if x["id"] == b["id"])
    assert b2["stops"][0]["id"] == moving["id"] and [s["seq"] for s in b2["stops"]] == list(range(1, len(b2["stops"]) + 1))
    assert b2["load"] == b["load"] + moving["demand"] and a2["load"] == a["load"] - moving["demand"]
    assert [s["eta"] for s in b2["stops"]] == sorted(s["eta"] for s in b2["stops"])
    assert d2["version"] > d["version"]
    # stale version → 412; pile every stop onto one route → capacity violation flagged, not refused
    stale = api("logistics").patch(f"/api/v1/routes/{head['id']}/stops", json={"moves": [
        {"stop_id": moving["id"], "route_id": a["id"]}]}, headers={"If-Match": f'"{d["version"]}"'})
    assert stale.status_code == 412
    moves = [{"stop_id": s["id"], "route_id": a["id"]} for r_ in d2["routes"] if r_["id"] != a["id"]
             for s in r_["stops"]]
    d3 = api("logistics").patch(f"/api/v1/routes/{head['id']}/stops", json={"moves": moves}).get_json()
    a3 = next(x for x in d3["routes"] if x["id"] == a["id"])
    assert any(v.startswith("capacity") for v in a3["violations"])
    assert d3["summary"]["feasible"] is False
    bad = api("logistics").patch(f"/api/v1/routes/{head['id']}/stops",
                                 json={"moves": [{"stop_id": 10**9, "route_id": a["id"]}]})
    assert bad.status_code == 422


def test_replan_keeps_the_id_and_replaces_routes(db_session, api):
    head = _plan_api(api, "admin")
    r = api("admin").post(f"/api/v1/routes/{head['id']}/replan", json={"seed": 3, "wait": True})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["id"] == head["id"] and r.get_json()["status"] == "planned"
    n = db_session.execute(text("SELECT count(*) FROM route_stop WHERE plan_id = :p"), {"p": head["id"]}).scalar_one()
    assert n == head["summary"]["stops"]


# ----------------------------------------------------------------------------- web

def test_planning_page_plans_and_shows_routes(db_session, web_login):
    from tests.conftest import csrf_token_from
    c = web_login("logistics")
    page = c.get("/routes")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="branch"' in html and "BR-HEL" in html and "BR-TAM" not in html
    r = c.post("/routes", data={"csrf_token": csrf_token_from(html), "branch": "1", "date": TOMORROW.isoformat(),
                                "source": "orders", "mode": "auto", "time_limit": "1"})
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    shown = c.get(r.headers["Location"]).get_data(as_text=True)
    assert 'id="route-map"' in shown and 'id="stop-table"' in shown and "format=gpx" in shown
    pid = int(r.headers["Location"].split("plan=")[1])
    assert c.get(f"/routes/{pid}").status_code == 200
    bad = c.post("/routes", data={"csrf_token": csrf_token_from(html), "branch": "1", "date": "tomorrow",
                                  "source": "orders", "mode": "auto", "time_limit": "1"})
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.get_data(as_text=True)


def test_background_plans_run_concurrently_without_mixing(engine):
    """Two plans solved at once in the executor's threads, each saved in its own
    transaction (committed data in the throw-away test DB, removed afterwards)."""
    from sqlalchemy.orm import sessionmaker

    from geo_crm.routing import jobs
    factory = sessionmaker(engine, expire_on_commit=False)
    ids = []
    try:
        with factory() as s:
            helsinki = helsinki_customers(s, 12)
            reqs = [PlanRequest(plan_date=TOMORROW, branch_ids=[1], time_limit_s=1, seed=1),
                    PlanRequest(plan_date=TOMORROW, branch_ids=[1], source="customers", customer_ids=helsinki,
                                mode="haversine", time_limit_s=1)]
            prepared = [planner.prepare(s, SYSTEM, r) for r in reqs]
            plans = [persist.create_plan(s, r, user_id=None) for r in reqs]
            s.commit()
            ids = [p.id for p in plans]
        futures = [jobs.submit(factory, pid, prep, {"username": "test"}) for pid, prep in zip(ids, prepared)]
        assert [f.result(timeout=60) for f in futures] == ["planned", "planned"]
        with factory() as s:
            a, b = (persist.plan_detail(s, SYSTEM, pid) for pid in ids)
            assert a["cost_mode"] == "network" and b["cost_mode"] == "haversine"
            for d, want in ((a, len(prepared[0].stops)), (b, 12)):
                stops = [x for r in d["routes"] for x in r["stops"]] + d["unassigned"]
                assert len(stops) == want == d["summary"]["stops"]
            assert {x["customer_id"] for r in b["routes"] for x in r["stops"]} == set(helsinki)
    finally:
        with factory() as s:
            s.execute(text("DELETE FROM delivery_plan WHERE id = ANY(:i)"), {"i": ids})
            s.commit()
