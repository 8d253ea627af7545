"""Injection: SQL, HTML/JS and CSV-formula payloads in every writable free-text field of
customers, contacts, opportunities, service records, partners, branches, products,
territories and orders.

Each payload must be stored verbatim (read back from the database), returned verbatim
in JSON, escaped in the record's HTML page (never present raw), neutralised in CSV/XLSX
exports (leading apostrophe) and inert in KML (XML-escaped, parses back verbatim).
"""
from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET

import openpyxl
import pytest
from markupsafe import escape
from sqlalchemy import text

PAYLOADS = [
    "'; DROP TABLE customer;--",
    "' OR 1=1--",
    "<img src=x onerror=alert(1)>",
    '"><script>alert(1)</script>',
    "javascript:alert(1)",
    '=HYPERLINK("http://x","y")',
    "+cmd|' /C calc'!A0",
    "@SUM(1)",
]
HTML_PAYLOADS = [p for p in PAYLOADS if "<" in p or '"' in p]
FORMULA_PAYLOADS = [p for p in PAYLOADS if p[0] in "=+-@"]

SQUARE = {"type": "Polygon", "coordinates": [[[24.0, 60.0], [24.1, 60.0], [24.1, 60.1], [24.0, 60.1], [24.0, 60.0]]]}


def _id(resp):
    body = resp.get_json()
    return body.get("id") or body.get("properties", {}).get("id")


def _props(body):
    return body.get("properties", body) if isinstance(body, dict) else body


def _create(a, kind, i, p, first_customer, ctx):
    """POST one record with payload p in all its free-text fields -> (resp, text fields, page url)."""
    if kind == "customer":
        f = {"name": p, "address": p, "city": p[:100], "notes": p, "delivery_notes": p, "phone": p[:50]}
        r = a.post("/api/v1/customers", json={"code": f"INJ{i}", **f, "lon": 24.94, "lat": 60.17})
        return r, f, "/customers/{id}"
    if kind == "contact":
        f = {"name": p, "title": p[:100], "notes": p}
        return a.post(f"/api/v1/customers/{first_customer}/contacts", json=f), f, f"/customers/{first_customer}"
    if kind == "opportunity":
        f = {"summary": p, "prospect_name": p, "contact_name": p}
        return a.post("/api/v1/opportunities", json={**f, "source": ctx["source"], "prospect_lon": 24.94,
                                                     "prospect_lat": 60.17}), f, \
            "/opportunities/{id}"
    if kind == "service":
        f = {"subject": p, "request_text": p}
        return a.post("/api/v1/service-records", json={"type": "complaint", "customer_id": first_customer, **f}), f, \
            "/service/{id}"
    if kind == "partner":
        f = {"name": p, "address": p, "city": p[:100], "notes": p}
        return a.post("/api/v1/partners", json={"code": f"INJP{i}", "partner_type": "reseller",
                                                 "geometry": {"type": "Point", "coordinates": [24.9, 60.2]}, **f}), \
            f, "/partners/{id}"
    if kind == "branch":
        f = {"name": p, "address": p, "city": p[:100]}
        return a.post("/api/v1/branches", json={"code": f"INJB{i}",
                                                 "geometry": {"type": "Point", "coordinates": [24.9, 60.2]}, **f}), \
            f, "/branches/{id}"
    if kind == "product":
        f = {"name": p, "category": p[:64]}
        return a.post("/api/v1/products", json={"sku": f"INJ-{i}", "unit": "pcs", "unit_price": 1, "unit_cost": 0.5,
                                                 **f}), f, None
    if kind == "territory":
        f = {"name": p[:200] + f" {i}", "description": p}
        return a.post("/api/v1/territories", json={**f, "geometry": SQUARE, "allow_overlap": True}), f, None
    if kind == "order":
        f = {"notes": p, "delivery_address": p}
        return a.post("/api/v1/orders", json={"customer_id": first_customer, **f,
                                               "lines": [{"product_id": ctx["product"], "quantity": 1}]}), \
            f, "/orders/{id}"
    raise AssertionError(kind)


KINDS = ["customer", "contact", "opportunity", "service", "partner", "branch", "product", "territory", "order"]
TABLES = {"customer": "customer", "contact": "contact", "opportunity": "opportunity", "service": "service_record",
          "partner": "partner", "branch": "branch", "product": "product", "territory": "territory",
          "order": "sales_order"}


def _table(connection, kind):
    if kind == "order":
        return connection.execute(text("SELECT to_regclass('sales_order') IS NOT NULL")).scalar() \
            and "sales_order" or "\"order\""
    return TABLES[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_payloads_are_stored_and_returned_verbatim_and_escaped_in_html(api, client, web_login, connection, kind):
    a = api("admin")
    first_customer = a.get("/api/v1/customers?limit=1").get_json()["features"][0]["id"]
    ctx = {"source": connection.execute(text("SELECT code FROM dictionary WHERE kind = 'opportunity_source' "
                                              "ORDER BY id LIMIT 1")).scalar(),
           "product": connection.execute(text("SELECT id FROM product WHERE active ORDER BY id LIMIT 1")).scalar()}
    web_login("admin")
    table = _table(connection, kind)
    for i, p in enumerate(PAYLOADS):
        r, fields, page = _create(a, kind, i, p, first_customer, ctx)
        assert r.status_code in (200, 201), (kind, p, r.get_data(as_text=True)[:300])
        rid = _id(r)
        body = _props(r.get_json())
        for k, v in fields.items():
            if k in body:
                assert body[k] == v, (kind, k, body[k], v)
        # stored verbatim: the database row holds the exact text (and the tables survived)
        row = connection.execute(text(f"SELECT to_jsonb(t) FROM {table} t WHERE id = :id"), {"id": rid}).scalar()
        for k, v in fields.items():
            col = {"summary": "summary", "request_text": "request_text"}.get(k, k)
            if col in row:
                assert row[col] == v, (kind, col, row[col], v)
        assert connection.execute(text("SELECT count(*) FROM customer")).scalar() > 0
        if page and (p in HTML_PAYLOADS or p.startswith("javascript:")):
            html = client.get(page.format(id=rid)).get_data(as_text=True)
            assert str(escape(p)) in html or str(escape(p[:100])) in html, (kind, p)
            if p in HTML_PAYLOADS:
                assert p not in html, (kind, p)
            assert not re.search(r"""(href|src)\s*=\s*["']?javascript:""", html, re.I), kind


def _only_scripts_with_nonce(html: str) -> None:
    for tag in re.findall(r"<script\b[^>]*>", html, re.I):
        assert "nonce=" in tag, tag
    assert not re.search(r"<[a-z][^>]*\son[a-z]+\s*=", html, re.I), "inline event handler in markup"


def test_list_pages_escape_hostile_names(api, client, web_login):
    a = api("admin")
    for i, p in enumerate(HTML_PAYLOADS):
        assert a.post("/api/v1/customers", json={"code": f"INJL{i}", "name": f"{p} INJLIST"}).status_code == 201
    web_login("admin")
    for url in ("/customers?q=INJLIST", "/dashboard", "/admin/audit", "/opportunities", "/service"):
        r = client.get(url)
        if r.status_code == 404:
            continue
        html = r.get_data(as_text=True)
        assert r.status_code == 200, url
        for p in HTML_PAYLOADS:
            assert p not in html, (url, p)
        _only_scripts_with_nonce(html)


def test_exports_neutralise_formulas_and_escape_xml(api):
    a = api("admin")
    for i, p in enumerate(PAYLOADS):
        assert a.post("/api/v1/customers", json={"code": f"INJX{i}", "name": p, "city": "Injectville",
                                                 "lon": 24.9 + i / 100, "lat": 60.2}).status_code == 201
    r = a.get("/api/v1/export/customers?format=csv&q=INJX")
    rows = {row["code"]: row for row in csv.DictReader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff")))}
    for i, p in enumerate(PAYLOADS):
        name = rows[f"INJX{i}"]["name"]
        assert name == ("'" + p if p in FORMULA_PAYLOADS else p), (p, name)
    wb = openpyxl.load_workbook(io.BytesIO(a.get("/api/v1/export/customers?format=xlsx&q=INJX").data))
    ws = wb.worksheets[0]
    header = [c.value for c in ws[1]]
    cells = {row[header.index("code")]: row[header.index("name")] for row in ws.iter_rows(min_row=2, values_only=True)}
    for i, p in enumerate(PAYLOADS):
        assert cells[f"INJX{i}"] == ("'" + p if p in FORMULA_PAYLOADS else p), (p, cells[f"INJX{i}"])
    for row in ws.iter_rows(min_row=2):
        for c in row:
            assert c.data_type != "f", c.value
    kml = a.get("/api/v1/export/customers?format=kml&q=INJX").data
    assert b"<script>" not in kml and b"<img " not in kml
    names = {el.text for el in ET.fromstring(kml).iter() if el.tag.endswith("}name") or el.tag == "name"}
    for p in PAYLOADS:
        assert p in names, p


def test_route_exports_are_inert(api):
    """GPX, KML, CSV manifest and the HTML driver sheet of a plan visiting a customer with
    a hostile name."""
    a = api("admin")
    names = {}
    ids = []
    for i, p in enumerate(PAYLOADS[:6]):
        r = a.post("/api/v1/customers", json={"code": f"INJR{i}", "name": p, "address": p,
                                              "lon": 24.80 + i / 50, "lat": 60.20 + i / 200})
        assert r.status_code == 201
        ids.append(_id(r))
        names[ids[-1]] = p
    r = a.post("/api/v1/routes/plan", json={"date": "2026-11-02", "branch": [1], "source": "customers",
                                            "customer_ids": ids, "mode": "haversine", "time_limit_s": 1,
                                            "wait": True, "name": HTML_PAYLOADS[0]})
    assert r.status_code == 201, r.get_data(as_text=True)[:300]
    plan = r.get_json()["id"]
    gpx = a.get(f"/api/v1/routes/{plan}/export?format=gpx")
    assert gpx.status_code == 200
    root = ET.fromstring(gpx.data)
    texts = {el.text for el in root.iter() if el.text}
    for p in names.values():
        assert any(p in t for t in texts), p
    assert b"<script>" not in gpx.data and b"<img " not in gpx.data
    kml = a.get(f"/api/v1/routes/{plan}/export?format=kml").data
    ET.fromstring(kml)
    assert b"<script>" not in kml and b"<img " not in kml
    sheet = a.get(f"/api/v1/routes/{plan}/export?format=html").get_data(as_text=True)
    for p in HTML_PAYLOADS:
        assert p not in sheet
    assert str(escape(HTML_PAYLOADS[0])) in sheet
    manifest = a.get(f"/api/v1/routes/{plan}/export?format=csv").get_data(as_text=True).lstrip("\ufeff")
    cells = [c for row in csv.reader(io.StringIO(manifest)) for c in row]
    for p in FORMULA_PAYLOADS:
        if p in names.values():
            assert "'" + p in cells and p not in cells, p
