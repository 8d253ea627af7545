"""Plan exports parsed back: GPX (GPX 1.1 schema), KML, GeoJSON, CSV and the HTML sheet."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import xmlschema
from lxml import etree
from sqlalchemy import text

from geo_crm.routing import exports, persist, planner
from geo_crm.routing.planner import PlanRequest, StopOverride
from geo_crm.security.scope import Scope
from tests.conftest import AS_OF

GPX_XSD = Path(__file__).parent / "data" / "gpx11.xsd"
G = {"g": "http://www.topografix.com/GPX/1/1"}
K = {"k": "http://www.opengis.net/kml/2.2"}
EVIL = '=HYPERLINK("http://x.test","<b>&\'Oy")'


@pytest.fixture()
def detail(db_session):
    """A small road-network plan: 10 Helsinki customers, one with a hostile name."""
    ids = list(db_session.execute(text(
        "SELECT id FROM customer WHERE service_branch_id = 1 AND geom IS NOT NULL ORDER BY id LIMIT 10")).scalars())
    db_session.execute(text("UPDATE customer SET name = :n, delivery_notes = '-1+1' WHERE id = :c"),
                       {"n": EVIL, "c": ids[0]})
    caps = db_session.execute(text("SELECT capacity FROM vehicle WHERE branch_id = 1 AND active ORDER BY id "
                                   "LIMIT 2")).scalars().all()
    demand = max(caps) // 9 + 1          # needs both vans
    req = PlanRequest(plan_date=AS_OF + timedelta(days=1), branch_ids=[1], source="customers", customer_ids=ids,
                      stops=[StopOverride(customer_id=c, demand=demand) for c in ids], max_vehicles=2,
                      time_limit_s=1)
    res = planner.compute(db_session.connection(), planner.prepare(db_session, Scope.system(), req))
    assert res.mode == "network" and not res.unassigned and len(res.routes) == 2
    p = persist.create_plan(db_session, req, user_id=None)
    persist.save_result(db_session, p, res)
    return persist.plan_detail(db_session, Scope.system(), p.id)


def _stops(d):
    return [(r["route_no"], s) for r in d["routes"] for s in r["stops"]]


def test_gpx_validates_and_round_trips(detail):
    data = exports.to_gpx(detail)
    xmlschema.XMLSchema(str(GPX_XSD)).validate(io.BytesIO(data))
    root = etree.fromstring(data)
    wpts = root.findall("g:wpt", G)
    assert len(wpts) == len(_stops(detail))
    for w, (rno, s) in zip(wpts, _stops(detail)):
        assert float(w.get("lat")) == pytest.approx(s["lat"], abs=1e-7)
        assert float(w.get("lon")) == pytest.approx(s["lon"], abs=1e-7)
        assert w.findtext("g:name", namespaces=G) == f"{rno}.{s['seq']} {s['name']}"
        eta = datetime.fromisoformat(w.findtext("g:time", namespaces=G).replace("Z", "+00:00"))
        assert eta == datetime.fromisoformat(s["eta"]).astimezone(timezone.utc)
    assert any(EVIL in (w.findtext("g:name", namespaces=G) or "") for w in wpts), "text survives escaping"
    rtes, trks = root.findall("g:rte", G), root.findall("g:trk", G)
    assert len(rtes) == len(trks) == len(detail["routes"])
    for rte, trk, r in zip(rtes, trks, detail["routes"]):
        names = [p.findtext("g:name", namespaces=G) for p in rte.findall("g:rtept", G)]
        assert names[0] == names[-1] == "Depot"
        assert names[1:-1] == [f"{r['route_no']}.{s['seq']} {s['name']}" for s in r["stops"]]
        pts = [(float(p.get("lon")), float(p.get("lat"))) for p in trk.findall("g:trkseg/g:trkpt", G)]
        assert pts == [tuple(round(c, 7) for c in xy) for xy in r["geometry"]["coordinates"]]
        assert len(pts) > len(r["stops"]) + 2, "the track follows the streets"
    one = etree.fromstring(exports.to_gpx(detail, route_no=1))
    assert len(one.findall("g:rte", G)) == 1


def test_kml_round_trips(detail):
    root = etree.fromstring(exports.to_kml(detail))
    folders = root.findall("k:Document/k:Folder", K)
    assert len(folders) == len(detail["routes"])
    for f, r in zip(folders, detail["routes"]):
        marks = f.findall("k:Placemark", K)
        line = marks[0].findtext("k:LineString/k:coordinates", namespaces=K).split()
        assert len(line) == len(r["geometry"]["coordinates"])
        pts = marks[1:]
        assert [int(p.findtext("k:ExtendedData/k:Data[@name='seq']/k:value", namespaces=K)) for p in pts] == \
            [s["seq"] for s in r["stops"]]
        for p, s in zip(pts, r["stops"]):
            lon, lat = (float(v) for v in p.findtext("k:Point/k:coordinates", namespaces=K).split(","))
            assert (lon, lat) == pytest.approx((s["lon"], s["lat"]), abs=1e-7)
    colour = root.find("k:Document/k:Style/k:LineStyle/k:color", K).text
    rgb = detail["routes"][0]["color"].lstrip("#")
    assert colour == "ff" + rgb[4:6] + rgb[2:4] + rgb[0:2]


def test_geojson_round_trips(detail):
    fc = json.loads(json.dumps(exports.to_geojson(detail)))
    lines = [f for f in fc["features"] if f["properties"]["kind"] == "route"]
    points = [f for f in fc["features"] if f["properties"]["kind"] == "stop"]
    assert len(lines) == len(detail["routes"]) and all(f["geometry"]["type"] == "LineString" for f in lines)
    assert [(f["properties"]["route_no"], f["properties"]["seq"]) for f in points] == \
        [(rno, s["seq"]) for rno, s in _stops(detail)]
    for f, (_, s) in zip(points, _stops(detail)):
        assert f["geometry"]["coordinates"] == [s["lon"], s["lat"]]


def test_csv_manifest_neutralises_formulas(detail):
    raw = exports.to_csv(detail).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(raw)))
    assert [(int(r["route"]), int(r["stop"])) for r in rows] == [(rno, s["seq"]) for rno, s in _stops(detail)]
    evil = next(r for r in rows if "HYPERLINK" in r["customer"])
    assert evil["customer"] == "'" + EVIL
    assert evil["notes"] == "'-1+1"
    for r, (_, s) in zip(rows, _stops(detail)):
        assert r["eta"] == s["eta"][11:16] and r["phone"] in (s["phone"], "'" + s["phone"])
        assert not r["customer"].startswith(("=", "+", "-", "@"))


def test_html_sheet_escapes_and_lists_stops(detail):
    html = exports.to_html(detail, nonce="abcdefgh1234")
    assert "<b>&" not in html and "&lt;b&gt;&amp;" in html
    assert html.count('nonce="abcdefgh1234"') >= 2
    for _, s in _stops(detail):
        assert s["eta"][11:16] in html
    assert "https://unpkg" not in html and "cdn.jsdelivr" not in html


def test_export_endpoint(detail, api):
    r = api("admin").get(f"/api/v1/routes/{detail['id']}/export?format=gpx")
    assert r.status_code == 200 and r.mimetype == "application/gpx+xml"
    assert r.headers["Content-Disposition"].startswith("attachment;")
    xmlschema.XMLSchema(str(GPX_XSD)).validate(io.BytesIO(r.data))
    h = api("admin").get(f"/api/v1/routes/{detail['id']}/export?format=html")
    assert h.status_code == 200 and h.headers["Content-Disposition"].startswith("inline;")
    assert api("admin").get(f"/api/v1/routes/{detail['id']}/export?format=shp").status_code == 422
    assert api("admin").get(f"/api/v1/routes/{detail['id']}/export?format=csv&route=99").status_code == 422
    assert api("admin").get("/api/v1/routes/999999/export?format=gpx").status_code == 404


def test_openapi_documents_route_operations(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    paths = doc["paths"]
    assert "post" in paths["/api/v1/routes/plan"]
    assert "patch" in paths["/api/v1/routes/{plan_id}/stops"]
    assert "get" in paths["/api/v1/routes/{plan_id}/export"]
