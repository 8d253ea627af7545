"""Import and export pages: permissions, CSRF, upload → mapping → job → report, the
mapping override, all-or-nothing, rejects, size limit, and exports per format with the
filters applied and formulas neutralised."""
import csv
import io
import json
import re

import pytest
from sqlalchemy import text

from tests.conftest import csrf_token_from

HEADER = ["code", "name", "level", "lat", "lon"]


@pytest.fixture()
def data_app(app, tmp_path):
    app.config.update(IMPORT_INLINE=True, IMPORT_UPLOAD_DIR=str(tmp_path / "uploads"))
    return app


@pytest.fixture()
def admin(data_app, client, web_login):
    return web_login("admin")


def _csv(rows, header=HEADER) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _upload(c, data: bytes, name="customers.csv", kind="customers", **extra):
    page = c.get("/data/import")
    token = csrf_token_from(page.get_data(as_text=True))
    return c.post("/data/import", data={"csrf_token": token, "kind": kind, "file": (io.BytesIO(data), name), **extra},
                  content_type="multipart/form-data")


def _selected(page) -> dict[str, str]:
    """{column index: field selected on the mapping page}."""
    out = {}
    for i, options in re.findall(r'<select name="map_(\d+)"[^>]*>(.*?)</select>', page, re.S):
        sel = re.search(r'<option value="([^"]*)" selected', options)
        out[i] = sel.group(1) if sel else ""
    return out


def _run(c, mapping_url, mode, mapping=None):
    """Submit the mapping page as shown (or with `mapping` {column index: field})."""
    page = c.get(mapping_url).get_data(as_text=True)
    form = {"csrf_token": csrf_token_from(page), "mode": mode, "action": "run"}
    form.update({f"map_{i}": f for i, f in _selected(page).items()})
    for i, field in (mapping or {}).items():
        form[f"map_{i}"] = field
    return c.post(mapping_url, data=form)


def _job_page(c, r):
    assert r.status_code == 302, r.get_data(as_text=True)[:800]
    loc = r.headers["Location"]
    assert re.search(r"/data/import/jobs/\d+$", loc), loc
    return loc, c.get(loc).get_data(as_text=True)


def _count(connection, where="TRUE", **params):
    return connection.execute(text(f"SELECT count(*) FROM customer WHERE {where}"), params).scalar()


# -- permissions and CSRF --------------------------------------------------------------------
def test_pages_render_for_admin(admin):
    imp = admin.get("/data/import")
    assert imp.status_code == 200
    html = imp.get_data(as_text=True)
    assert '<meta name="csrf-token"' in html and 'enctype="multipart/form-data"' in html
    assert all(f'<option value="{k}"' in html for k in ("customers", "contacts", "branches", "partners"))
    assert re.search(r'<script nonce="[^"]+" src="/static/js/data.js">', html)
    assert " onclick=" not in html and "javascript:" not in html
    exp = admin.get("/data/export")
    assert exp.status_code == 200
    html = exp.get_data(as_text=True)
    for name in ("level", "status", "industry", "owner_id", "region_id", "territory_id", "q", "bbox", "format"):
        assert f'name="{name}"' in html, name
    assert 'href="/ogc/"' in html or 'href="/ogc"' in html
    assert "readonly-role" in html


@pytest.mark.parametrize("user,url,status", [("sales", "/data/import", 403), ("executive", "/data/import", 403),
                                             ("customer", "/data/export", 403), ("service", "/data/export", 403),
                                             ("executive", "/data/export", 200)])
def test_permissions(data_app, client, web_login, user, url, status):
    assert web_login(user).get(url).status_code == status


def test_anonymous_is_sent_to_login(data_app, client):
    for url in ("/data/import", "/data/export", "/data/import/jobs/1"):
        r = client.get(url)
        assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_upload_requires_csrf(admin, connection):
    jobs = connection.execute(text("SELECT count(*) FROM import_job")).scalar()  # other tests may leave jobs
    r = admin.post("/data/import", data={"kind": "customers", "file": (io.BytesIO(_csv([])), "x.csv")},
                   content_type="multipart/form-data")
    assert r.status_code == 400
    assert connection.execute(text("SELECT count(*) FROM import_job")).scalar() == jobs


def test_mapping_post_requires_csrf(admin):
    r = _upload(admin, _csv([["WEBT-0", "Csrf Oy", "key", "60.2", "24.9"]]))
    r2 = admin.post(r.headers["Location"], data={"mode": "dry_run", "map_0": "code", "map_1": "name"})
    assert r2.status_code == 400


# -- import flow ------------------------------------------------------------------------------
def test_dry_run_shows_per_row_errors_and_writes_nothing(admin, connection):
    before = _count(connection)
    data = _csv([["WEBD-1", "Hyvä Oy", "key", "60.17", "24.94"],
                 ["WEBD-2", "", "key", "60.18", "24.95"],            # row 3: name missing
                 ["WEBD-3", "Kolmas Oy", "gold", "60.19", "24.96"],  # row 4: bad level
                 ["WEBD-4", "Neljäs Oy", "small", "160", "24.97"]])  # row 5: latitude out of range
    r = _upload(admin, data)
    assert r.status_code == 302 and "/data/import/u/" in r.headers["Location"]
    mapping = admin.get(r.headers["Location"]).get_data(as_text=True)
    assert "Hyvä Oy" in mapping                          # sample values shown
    assert list(_selected(mapping).values()) == HEADER      # automatic mapping preselected
    loc, html = _job_page(admin, _run(admin, r.headers["Location"], "dry_run"))
    assert 'id="report"' in html and "Dry run finished: the file has errors" in html
    table = html[html.index('id="error-table"'):]
    rows = re.findall(r"<tr><td class=\"num\">(\d+)</td><td>([^<]+)</td><td>([^<]+)</td></tr>", table)
    by_row = {int(n): (f, p) for n, f, p in rows}
    assert set(by_row) == {3, 4, 5}, rows
    assert by_row[3][0] == "name" and by_row[4][0] == "level" and by_row[5][0] == "lat"
    assert _count(connection) == before and _count(connection, "code LIKE 'WEBD-%'") == 0
    job = admin.get(f"/api/v1/import/jobs/{loc.rsplit('/', 1)[1]}").get_json()
    assert job["dry_run"] and job["report"]["invalid"] == 3 and job["report"]["valid"] == 1
    rep = admin.get(loc + "/report.csv")
    assert rep.status_code == 200 and "attachment" in rep.headers["Content-Disposition"]
    lines = list(csv.reader(io.StringIO(rep.get_data(as_text=True))))
    assert lines[0] == ["row", "field", "problem", "severity"] and {r[0] for r in lines[1:] if r[3] == "error"} == {"3", "4", "5"}


def test_all_or_nothing_with_an_invalid_row_changes_nothing(admin, connection):
    existing = connection.execute(text("SELECT code, name, version FROM customer ORDER BY id LIMIT 1")).one()
    before = _count(connection)
    data = _csv([[existing.code, "Renamed By Import", "key", "60.17", "24.94"],
                 ["WEBA-1", "Uusi Oy", "key", "60.18", "24.95"],
                 ["WEBA-2", "Huono Oy", "key", "not-a-number", "24.96"]])
    loc, html = _job_page(admin, _run(admin, _upload(admin, data).headers["Location"], "all_or_nothing"))
    assert 'data-status="failed"' in html and "Nothing was imported" in html
    assert _count(connection) == before and _count(connection, "code LIKE 'WEBA-%'") == 0
    assert connection.execute(text("SELECT name, version FROM customer WHERE code = :c"),
                              {"c": existing.code}).one() == (existing.name, existing.version)


def test_mapping_override_and_skip_invalid_with_rejects(admin, connection):
    # 'Firma' is not a known alias: the user maps it to name (and drops the 'name' column)
    data = _csv([["WEBS-1", "Alpha Oy", "60.17", "24.94", "ignored"],
                 ["WEBS-2", "Beta Oy", "60.18", "24.95", "ignored"],
                 ["WEBS-3", "", "60.19", "24.96", "ignored"]],
                header=["code", "Firma", "lat", "lon", "name"])
    url = _upload(admin, data).headers["Location"]
    page = admin.get(url).get_data(as_text=True)
    assert _selected(page)["4"] == "name" and _selected(page)["1"] == ""   # the automatic mapping
    loc, html = _job_page(admin, _run(admin, url, "skip_invalid", {1: "name", 4: ""}))
    assert 'data-status="imported"' in html
    names = dict(connection.execute(text("SELECT code, name FROM customer WHERE code LIKE 'WEBS-%'")).all())
    assert names == {"WEBS-1": "Alpha Oy", "WEBS-2": "Beta Oy"}
    rej = admin.get(loc + "/rejects.csv")
    assert rej.status_code == 200
    lines = list(csv.reader(io.StringIO(rej.get_data(as_text=True))))
    assert lines[0][:2] == ["_row", "_errors"] and len(lines) == 2 and lines[1][0] == "4" and "name" in lines[1][1]
    # the same file again: idempotent
    _, html2 = _job_page(admin, _run(admin, _upload(admin, data).headers["Location"], "skip_invalid",
                                     {1: "name", 4: ""}))
    assert re.search(r'id="count-inserted">0<', html2) and re.search(r'id="count-unchanged">2<', html2)


def test_mapping_errors_are_messages(admin):
    url = _upload(admin, _csv([["WEBM-1", "M Oy", "key", "60.1", "24.9"]])).headers["Location"]
    r = _run(admin, url, "dry_run", {0: "name", 1: "name"})
    assert r.status_code == 422 and "two columns" in r.get_data(as_text=True)
    r = _run(admin, url, "dry_run", {0: ""})
    assert r.status_code == 422 and "code" in r.get_data(as_text=True)


def test_bad_uploads(admin, data_app, connection):
    jobs = connection.execute(text("SELECT count(*) FROM import_job")).scalar()  # other tests may leave jobs
    r = _upload(admin, b"MZ\x00\x00binary", name="evil.exe")
    assert r.status_code == 422 and "Unsupported file type" in r.get_data(as_text=True)
    r = _upload(admin, b"\x00\x01\x02" * 100, name="bin.csv")
    assert r.status_code == 422 and "cannot be read" in r.get_data(as_text=True)
    # path parts in the name are dropped; the job shows only the sanitised name
    r = _upload(admin, _csv([["WEBP-1", "P Oy", "key", "60.1", "24.9"]]), name="../../etc/<b>x</b>.csv")
    assert r.status_code == 302
    _, html = _job_page(admin, _run(admin, r.headers["Location"], "dry_run"))
    assert "<b>x</b>" not in html and "../" not in html
    # too large for MAX_CONTENT_LENGTH: a clear message, not a bare error
    data_app.config["MAX_CONTENT_LENGTH"] = 2048
    r = _upload(admin, b"code,name\n" + b"X,Y\n" * 2000)
    assert r.status_code == 413 and "too large" in r.get_data(as_text=True)
    assert connection.execute(text("SELECT count(*) FROM import_job")).scalar() == jobs + 1


def test_job_of_nobody_else_and_unknown_token(admin):
    assert admin.get("/data/import/jobs/999999").status_code == 404
    assert admin.get("/data/import/u/" + "a" * 32).status_code == 404
    assert admin.get("/data/import/u/..%2F..%2Fetc").status_code == 404


# -- export -----------------------------------------------------------------------------------
@pytest.fixture()
def evil(connection):
    connection.execute(text(
        "INSERT INTO customer (code, name, level, city, geom, geocode_quality) VALUES"
        " ('WEBX-1', '=HYPERLINK(\"http://evil.example\",\"x\")', 'key', '@SUM(A1)',"
        "  ST_SetSRID(ST_MakePoint(24.9, 60.2), 4326), 'exact'),"
        " ('WEBX-2', 'Tavallinen WEBX Oy', 'small', 'Espoo', ST_SetSRID(ST_MakePoint(24.7, 60.2), 4326), 'exact')"))


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "geojson", "gpkg", "kml"])
def test_export_each_format_with_filter(admin, evil, tmp_path, fmt):
    r = admin.get(f"/data/export/download?q=WEBX&level=key&format={fmt}")
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    assert "attachment" in r.headers["Content-Disposition"]
    data = r.get_data()
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
        assert [x["code"] for x in rows] == ["WEBX-1"]
        assert rows[0]["name"].startswith("'=HYPERLINK") and rows[0]["city"] == "'@SUM(A1)"
    elif fmt == "xlsx":
        import openpyxl
        ws = openpyxl.load_workbook(io.BytesIO(data)).active
        vals = list(ws.iter_rows(values_only=True))
        head = list(vals[0])
        assert [v[head.index("code")] for v in vals[1:]] == ["WEBX-1"]
        assert vals[1][head.index("name")].startswith("'=HYPERLINK")
        assert not any(isinstance(v, str) and v.startswith(("=", "@")) for row in vals for v in row)
    elif fmt == "geojson":
        fc = json.loads(data)
        assert [f["properties"]["code"] for f in fc["features"]] == ["WEBX-1"]
        assert fc["features"][0]["geometry"]["coordinates"] == pytest.approx([24.9, 60.2])
    elif fmt == "gpkg":
        import pyogrio
        p = tmp_path / "c.gpkg"
        p.write_bytes(data)
        df = pyogrio.read_dataframe(p)
        assert list(df["code"]) == ["WEBX-1"] and df.crs.to_epsg() == 4326
    else:
        import xml.dom.minidom
        doc = xml.dom.minidom.parseString(data)
        assert len(doc.getElementsByTagName("Placemark")) == 1 and b"WEBX-1" in data and b"WEBX-2" not in data


def test_export_page_counts_and_bad_filters(admin, evil, connection):
    html = admin.get("/data/export?level=key&level=small&q=WEBX").get_data(as_text=True)
    assert 'data-count="2"' in html
    r = admin.get("/data/export/download?bbox=1,2,3&format=csv")
    assert r.status_code == 422 and "bbox" in r.get_data(as_text=True)
    assert admin.get("/data/export/download?format=exe").status_code == 422


def test_export_respects_scope(data_app, client, web_login, connection):
    """An account manager's export holds only the customers they own."""
    c = web_login("account")
    uid = connection.execute(text("SELECT id FROM app_user WHERE username = 'account'")).scalar()
    r = c.get("/data/export/download?format=geojson")
    assert r.status_code == 200
    codes = {f["properties"]["code"] for f in json.loads(r.get_data())["features"]}
    own = {x for (x,) in connection.execute(text("SELECT code FROM customer WHERE owner_id = :u"), {"u": uid})}
    assert codes and codes <= own
