"""OGC API – Features: conformance classes, OWSLib against a live server, paging,
bbox, CQL2 filter, authentication and Scope."""
import pytest
import requests
from sqlalchemy import create_engine, text

REQUIRED = {"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
            "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
            "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
            "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html"}


def _token(live_server, user):
    r = requests.post(f"{live_server}/api/v1/auth/token", json={"username": user, "password": f"{user}-demo"}, timeout=10)
    return r.json()["token"]


def test_owslib_against_live_server(live_server):
    from owslib.ogcapi.features import Features
    hdr = {"Authorization": f"Bearer {_token(live_server, 'admin')}"}
    w = Features(f"{live_server}/ogc", headers=hdr)
    assert REQUIRED <= set(w.conformance()["conformsTo"])
    assert {"customers", "branches", "partners", "regions", "territories"} <= {c["id"] for c in w.collections()["collections"]}
    page = w.collection_items("customers", limit=50)
    assert page["numberReturned"] == 50 and page["numberMatched"] >= 600
    assert any(l["rel"] == "next" for l in page["links"])
    nxt = next(l["href"] for l in page["links"] if l["rel"] == "next")
    page2 = requests.get(nxt, headers=hdr, timeout=10).json()
    assert not {f["id"] for f in page["features"]} & {f["id"] for f in page2["features"]}
    one = w.collection_item("customers", str(page["features"][0]["id"]))
    assert one["geometry"]["type"] == "Point"
    api = w.api()
    assert api["openapi"].startswith("3.0")


def test_unauthenticated_401_and_scope(live_server):
    assert requests.get(f"{live_server}/ogc/conformance", timeout=10).status_code == 200
    assert requests.get(f"{live_server}/ogc/collections/customers/items", timeout=10).status_code == 401
    hdr = {"Authorization": f"Bearer {_token(live_server, 'account')}"}
    mine = requests.get(f"{live_server}/ogc/collections/customers/items?limit=10000", headers=hdr, timeout=20).json()
    admin = {"Authorization": f"Bearer {_token(live_server, 'admin')}"}
    allc = requests.get(f"{live_server}/ogc/collections/customers/items?limit=10000", headers=admin, timeout=20).json()
    assert 0 < mine["numberMatched"] < allc["numberMatched"]
    mine_ids = {f["id"] for f in mine["features"]}
    other = next(f["id"] for f in allc["features"] if f["id"] not in mine_ids)
    assert requests.get(f"{live_server}/ogc/collections/customers/items/{other}", headers=hdr, timeout=10).status_code == 404
    svc = {"Authorization": f"Bearer {_token(live_server, 'customer')}"}
    assert requests.get(f"{live_server}/ogc/collections/partners", headers=svc, timeout=10).status_code == 404


def test_bbox_and_cql2(api):
    a = api("admin")
    r = a.get("/ogc/collections/customers/items?bbox=24.8,60.1,25.1,60.3&limit=1000").get_json()
    assert r["numberMatched"] > 0
    assert all(24.8 <= f["geometry"]["coordinates"][0] <= 25.1 for f in r["features"])
    r2 = a.get("/ogc/collections/customers/items?filter=level%3D'key'%20AND%20S_INTERSECTS(geometry,"
               "POLYGON((24.8 60.1,25.1 60.1,25.1 60.3,24.8 60.3,24.8 60.1)))&limit=1000").get_json()
    assert 0 < r2["numberMatched"] <= r["numberMatched"]
    assert all(f["properties"]["level"] == "key" for f in r2["features"])
    assert a.get("/ogc/collections/customers/items?filter=password%3D'x'").status_code == 400
    assert a.get("/ogc/collections/customers/items?filter=(((").status_code == 400
    assert a.get("/ogc/collections/customers/items?bbox=1,2").status_code == 400
    assert a.get("/ogc/collections/nope/items").status_code == 404
    html = a.get("/ogc/collections/customers/items?f=html&limit=5")
    assert html.status_code == 200 and b"<table" in html.data


def test_readonly_gis_role(engine, database_url):
    from geo_crm.exports.gis_role import create_readonly_role, drop_readonly_role
    from tests.conftest import _with_db  # noqa: F401
    name = "gis_test_account"
    with engine.begin() as c:
        c.execute(text(f"DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{name}') THEN "
                       f"EXECUTE 'DROP OWNED BY {name}'; EXECUTE 'DROP ROLE {name}'; END IF; END $$"))
        c.execute(text("DELETE FROM gis_role WHERE rolname = :n"), {"n": name})
        create_readonly_role(c, name, "a-long-password-123", "account")
        mine = c.execute(text("SELECT count(*) FROM customer WHERE owner_id = (SELECT id FROM app_user"
                              " WHERE username = 'account')")).scalar()
    from sqlalchemy.engine import make_url
    u = make_url(database_url).set(username=name, password="a-long-password-123")
    ro = create_engine(u)
    try:
        with ro.connect() as c:
            assert c.execute(text("SELECT count(*) FROM customer")).scalar() == mine
            assert c.execute(text("SELECT count(*) FROM branch")).scalar() > 0
            with pytest.raises(Exception):
                c.execute(text("SELECT count(*) FROM app_user"))
        with ro.connect() as c:
            with pytest.raises(Exception):
                c.execute(text("UPDATE customer SET name = 'x'"))
    finally:
        ro.dispose()
        with engine.begin() as c:
            drop_readonly_role(c, name)
