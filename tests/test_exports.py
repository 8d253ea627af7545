"""Exports: every format, filters and Scope, field restrictions, formula injection,
and round trips back through the importer."""
import io
import json

import pytest
from sqlalchemy import text

from geo_crm.customers.filters import CustomerFilter
from geo_crm.exports import export_customers, neutralise
from geo_crm.imports import ImportOptions, run_import
from geo_crm.security.scope import Scope


def test_neutralise():
    assert neutralise('=HYPERLINK("http://evil","x")') == '\'=HYPERLINK("http://evil","x")'
    assert neutralise("+1") == "'+1" and neutralise("@SUM(A1)") == "'@SUM(A1)" and neutralise("ok") == "ok"


@pytest.fixture()
def evil(db_session):
    db_session.execute(text(
        "INSERT INTO customer (code, name, level, geom, geocode_quality) VALUES"
        " ('EVIL-1', '=HYPERLINK(\"http://evil.example\",\"click\")', 'key',"
        " ST_SetSRID(ST_MakePoint(24.9, 60.2), 4326), 'exact')"))
    return db_session


def test_csv_and_xlsx_neutralise_formulas(evil):
    f = CustomerFilter(q="EVIL-1")
    csv_text = export_customers(evil, Scope.system(), f, "csv").decode("utf-8-sig")
    assert "'=HYPERLINK" in csv_text and "\n=HYPERLINK" not in csv_text and ',=HYPERLINK' not in csv_text
    import openpyxl
    wb = openpyxl.load_workbook(io.BytesIO(export_customers(evil, Scope.system(), f, "xlsx")))
    values = [c.value for row in wb.active.iter_rows() for c in row]
    assert any(isinstance(v, str) and v.startswith("'=HYPERLINK") for v in values)
    assert not any(isinstance(v, str) and v.startswith("=") for v in values)


@pytest.mark.parametrize("fmt,ext", [("csv", "csv"), ("xlsx", "xlsx"), ("geojson", "geojson"), ("gpkg", "gpkg")])
def test_round_trip(db_session, tmp_path, fmt, ext):
    f = CustomerFilter(level=["key"], bbox="24.5,60.0,25.5,60.5")
    data = export_customers(db_session, Scope.system(), f, fmt)
    p = tmp_path / f"c.{ext}"
    p.write_bytes(data)
    n = db_session.execute(text("SELECT count(*) FROM customer WHERE level='key' AND geom && "
                                "ST_MakeEnvelope(24.5,60.0,25.5,60.5,4326)")).scalar()
    assert n > 0
    rep = run_import(db_session, p, ImportOptions("customers"))
    assert rep["status"] == "imported", rep["errors"][:3]
    assert rep["rows"] == n and rep["inserted"] == 0
    again = run_import(db_session, p, ImportOptions("customers"))
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, n)


def test_kml(db_session):
    data = export_customers(db_session, Scope.system(), CustomerFilter(level=["key"]), "kml").decode()
    assert data.count("<Placemark>") == db_session.execute(
        text("SELECT count(*) FROM customer WHERE level='key' AND geom IS NOT NULL")).scalar()
    import xml.dom.minidom
    xml.dom.minidom.parseString(data)


def test_api_export_scope_and_fields(api, db_session):
    r = api("account").get("/api/v1/export/customers?format=geojson")
    assert r.status_code == 200
    feats = json.loads(r.data)["features"]
    uid = db_session.execute(text("SELECT id FROM app_user WHERE username='account'")).scalar()
    mine = db_session.execute(text("SELECT count(*) FROM customer WHERE owner_id=:u"), {"u": uid}).scalar()
    assert len(feats) == mine and all(f["properties"]["owner_id"] == uid for f in feats)
    r = api("logistics").get("/api/v1/export/customers?format=csv")
    header = r.data.decode("utf-8-sig").splitlines()[0].split(",")
    assert "annual_revenue_eur" not in header and "owner_id" not in header and "delivery_start" in header
    assert api("service").get("/api/v1/export/customers").status_code == 403
    assert api("admin").get("/api/v1/export/customers?format=doc").status_code == 422
    assert api("admin").get("/api/v1/export/customers?bbox=1,2,3").status_code == 422
