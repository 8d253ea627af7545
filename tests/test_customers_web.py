"""Customer HTML pages through the Flask client: list filters/sort/paging, forms with
validation errors and kept input, CSRF, optimistic-lock conflicts, contacts, roles."""
from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import text

from tests.conftest import csrf_token_from


pytestmark = pytest.mark.usefixtures("no_login_rate_limit")


def row_ids(html: str) -> list[int]:
    body = html[html.index('id="customer-table"'):]
    return [int(x) for x in re.findall(r'<tr data-id="(\d+)"', body)]


def total(html: str) -> int:
    return int(re.search(r'data-total="(\d+)"', html).group(1))


def form_fields(html: str) -> dict[str, str]:
    """Current values of text inputs and selected options in a rendered form."""
    out = {}
    for m in re.finditer(r'<input([^>]*)>', html):
        attrs = m.group(1)
        name = re.search(r'name="([^"]+)"', attrs)
        if name and 'type="checkbox"' not in attrs:
            val = re.search(r'value="([^"]*)"', attrs)
            out[name.group(1)] = val.group(1) if val else ""
    for m in re.finditer(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        sel = re.search(r'<option[^>]*selected[^>]*value="([^"]*)"|<option[^>]*value="([^"]*)"[^>]*selected', m.group(2))
        out[m.group(1)] = (sel.group(1) or sel.group(2)) if sel else ""
    for m in re.finditer(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', html, re.S):
        out[m.group(1)] = m.group(2).strip("\r\n")
    return out


def unescape(s: str) -> str:
    import html as h
    return h.unescape(s)


def test_list_filters_match_sql(client, web_login, connection):
    web_login("admin")
    want = connection.execute(text(
        "SELECT id FROM customer WHERE level='key' AND status='active' ORDER BY name, id")).scalars().all()
    r = client.get("/customers", query_string={"level": "key", "status": "active", "per_page": 250})
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert row_ids(html) == want and total(html) == len(want)
    # sortable columns link with the filters kept
    assert re.search(r'href="/customers\?[^"]*level=key[^"]*sort=code', html)
    # the CSV link exports exactly these filters
    m = re.search(r'href="(/api/v1/customers\?[^"]*format=csv[^"]*)"', html)
    assert m and "level=key" in m.group(1)
    csv_rows = client.get(unescape(m.group(1))).get_data(as_text=True).strip().splitlines()
    assert len(csv_rows) - 1 == len(want)


def test_list_paging_and_sort(client, web_login, connection):
    web_login("admin")
    order = connection.execute(text("SELECT id FROM customer ORDER BY code DESC, id DESC")).scalars().all()
    r = client.get("/customers", query_string={"per_page": 25, "page": 3, "sort": "code", "order": "desc"})
    html = r.get_data(as_text=True)
    assert row_ids(html) == order[50:75]
    assert total(html) == len(order)
    assert 'rel="next"' in html and 'rel="prev"' in html
    assert 'aria-sort="descending"' in html


def test_list_near_shows_distance_and_text_query(client, web_login, connection):
    web_login("admin")
    name = connection.execute(text("SELECT name FROM customer WHERE kind='company' ORDER BY id LIMIT 1")).scalar()
    r = client.get("/customers", query_string={"q": name})
    assert r.status_code == 200 and name in unescape(r.get_data(as_text=True))
    r = client.get("/customers", query_string={"near": "24.94,60.17", "radius_m": "20000"})
    html = r.get_data(as_text=True)
    assert "Distance (km)" in html and row_ids(html)


def test_list_within_and_owner_filters(client, web_login, connection):
    web_login("admin")
    poly = '{"type":"Polygon","coordinates":[[[24,60],[26,60],[26,61],[24,61],[24,60]]]}'
    owner = connection.execute(text("SELECT owner_id FROM customer WHERE owner_id IS NOT NULL LIMIT 1")).scalar()
    want = connection.execute(text(
        "SELECT id FROM customer WHERE owner_id=:o AND ST_Intersects(geom, ST_GeomFromGeoJSON(:p)) ORDER BY name, id"),
        {"o": owner, "p": poly}).scalars().all()
    html = client.get("/customers", query_string={"within": poly, "owner_id": owner, "per_page": 250}).get_data(as_text=True)
    assert row_ids(html) == want and want
    bow = '{"type":"Polygon","coordinates":[[[24,60],[25,61],[25,60],[24,61],[24,60]]]}'
    html = client.get("/customers", query_string={"within": bow}).get_data(as_text=True)
    assert 'data-field="within"' in html and "Self-intersection" in html


def test_list_bad_filter_is_a_message_not_an_error(client, web_login):
    web_login("admin")
    r = client.get("/customers", query_string={"near": "24.9,60.1"})
    assert r.status_code == 200
    assert "near and radius_m go together" in r.get_data(as_text=True)
    r = client.get("/customers", query_string={"bbox": "1,2"})
    assert 'data-field="bbox"' in r.get_data(as_text=True)


def test_restricted_roles_get_restricted_filters_and_columns(client, web_login):
    web_login("logistics")
    html = client.get("/customers").get_data(as_text=True)
    assert 'name="level"' not in html and ">Level<" not in html
    assert row_ids(html)


def _edit_page(client, cid):
    r = client.get(f"/customers/{cid}/edit")
    assert r.status_code == 200
    return r.get_data(as_text=True)


def _post_form(client, url, fields, **over):
    data = {**fields, **over}
    return client.post(url, data=data)


def test_edit_validation_error_keeps_input(client, web_login, connection):
    web_login("admin")
    cid = connection.execute(text("SELECT min(id) FROM customer WHERE geom IS NOT NULL")).scalar()
    html = _edit_page(client, cid)
    fields = form_fields(html)
    r = _post_form(client, f"/customers/{cid}/edit", fields, name="Typed Name Oy", lat="95", email="nope")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    kept = form_fields(page)
    assert kept["name"] == "Typed Name Oy" and kept["lat"] == "95" and kept["email"] == "nope"
    assert re.search(r'id="lat-err"[^>]*>[^<]*less than or equal to 90', page)
    assert re.search(r'id="email-err"[^>]*>[^<]*not a valid e-mail', page)
    # nothing was saved
    assert connection.execute(text("SELECT name FROM customer WHERE id=:i"), {"i": cid}).scalar() != "Typed Name Oy"
    # delivery window order names the field
    r = _post_form(client, f"/customers/{cid}/edit", fields, delivery_start="17:00", delivery_end="09:00")
    assert r.status_code == 200 and 'id="delivery_end-err"' in r.get_data(as_text=True)


def test_edit_saves_and_keeps_location_quality(client, web_login, connection):
    web_login("admin")
    cid, q = connection.execute(text(
        "SELECT id, geocode_quality FROM customer WHERE geocode_quality NOT IN ('manual','none') LIMIT 1")).one()
    fields = form_fields(_edit_page(client, cid))
    r = _post_form(client, f"/customers/{cid}/edit", fields, phone="+358 40 1234567")
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    row = connection.execute(text("SELECT phone, geocode_quality, version FROM customer WHERE id=:i"), {"i": cid}).one()
    assert row.phone == "+358 40 1234567" and row.geocode_quality == q and row.version == int(fields["version"]) + 1
    # moving it on the map sets 'manual'
    fields = form_fields(_edit_page(client, cid))
    r = _post_form(client, f"/customers/{cid}/edit", fields, lon="25.5", lat="61.5")  # quality select untouched
    assert r.status_code == 302
    row = connection.execute(text("SELECT ST_X(geom), ST_Y(geom), geocode_quality FROM customer WHERE id=:i"),
                             {"i": cid}).one()
    assert tuple(row) == (25.5, 61.5, "manual")


def test_stale_form_shows_conflict_and_loses_nothing(client, web_login, connection):
    web_login("admin")
    cid = connection.execute(text("SELECT min(id) FROM customer")).scalar()
    fields = form_fields(_edit_page(client, cid))
    # someone else saves meanwhile
    connection.execute(text("UPDATE customer SET phone='999', version=version+1 WHERE id=:i"), {"i": cid})
    r = _post_form(client, f"/customers/{cid}/edit", fields, notes="my careful notes")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert 'id="conflict"' in page and "Someone else saved this customer" in page
    kept = form_fields(page)
    assert kept["notes"] == "my careful notes"
    assert kept["version"] == str(int(fields["version"]) + 1)
    assert re.search(r"<td>phone</td><td>999</td>", page)
    # saving again now is a deliberate overwrite
    r = _post_form(client, f"/customers/{cid}/edit", kept)
    assert r.status_code == 302
    assert connection.execute(text("SELECT notes FROM customer WHERE id=:i"), {"i": cid}).scalar() == "my careful notes"


def test_csrf_is_required(client, web_login, connection):
    web_login("admin")
    cid = connection.execute(text("SELECT min(id) FROM customer")).scalar()
    fields = form_fields(_edit_page(client, cid))
    fields.pop("csrf_token")
    r = _post_form(client, f"/customers/{cid}/edit", fields, name="CSRF Oy")
    assert r.status_code == 400
    assert connection.execute(text("SELECT name FROM customer WHERE id=:i"), {"i": cid}).scalar() != "CSRF Oy"
    r = client.post(f"/customers/{cid}/delete", data={"version": "1"})
    assert r.status_code == 400
    assert connection.execute(text("SELECT count(*) FROM customer WHERE id=:i"), {"i": cid}).scalar() == 1


def test_create_through_the_form(client, web_login, connection):
    web_login("sales")
    html = client.get("/customers/new").get_data(as_text=True)
    fields = form_fields(html)
    code = "W-" + uuid.uuid4().hex[:8]
    r = _post_form(client, "/customers/new", fields, code=code, name="<b>Web</b> Oy", lon="24.95", lat="60.18")
    assert r.status_code == 302, r.get_data(as_text=True)[:3000]
    cid = connection.execute(text("SELECT id FROM customer WHERE code=:c"), {"c": code}).scalar()
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "&lt;b&gt;Web&lt;/b&gt; Oy" in page and "<b>Web</b>" not in page
    assert f"/customers/{cid}/edit" in page
    # a blank name is refused with the field's message
    r = _post_form(client, "/customers/new", fields, code="W-" + uuid.uuid4().hex[:8], name="  ")
    assert r.status_code == 200 and 'id="name-err"' in r.get_data(as_text=True)


def test_detail_shows_related_records_and_areas(client, web_login, connection):
    web_login("admin")
    cid = connection.execute(text("""SELECT c.id FROM customer c WHERE EXISTS (SELECT 1 FROM sales_order o WHERE o.customer_id=c.id)
        AND EXISTS (SELECT 1 FROM service_record s WHERE s.customer_id=c.id) AND c.region_id IS NOT NULL LIMIT 1""")).scalar()
    html = client.get(f"/customers/{cid}").get_data(as_text=True)
    region = connection.execute(text("SELECT r.name FROM region r JOIN customer c ON c.region_id=r.id WHERE c.id=:i"),
                                {"i": cid}).scalar()
    assert unescape(region) in unescape(html)
    sr = connection.execute(text("SELECT id FROM service_record WHERE customer_id=:i"), {"i": cid}).scalars().all()
    assert any(f'href="/service/{i}"' in html for i in sr)
    assert 'id="orders"' in html and 'class="folium-map"' in html
    assert re.search(r'<script nonce="[^"]+"', html) and "<script>" not in html


def test_contacts_through_forms(client, web_login, connection):
    web_login("admin")
    cid = connection.execute(text("SELECT min(id) FROM customer")).scalar()
    html = client.get(f"/customers/{cid}").get_data(as_text=True)
    token = csrf_token_from(html)
    r = client.post(f"/customers/{cid}/contacts", data={"csrf_token": token, "name": "Web Contact",
                                                         "gender": "unknown", "email": "bad"})
    assert r.status_code == 200 and 'id="email-err"' in r.get_data(as_text=True)
    r = client.post(f"/customers/{cid}/contacts", data={"csrf_token": token, "name": "Web Contact",
                                                         "gender": "female", "email": "w@example.com"})
    assert r.status_code == 302
    kid = connection.execute(text("SELECT id FROM contact WHERE customer_id=:i AND name='Web Contact'"),
                             {"i": cid}).scalar()
    edit = client.get(f"/contacts/{kid}/edit").get_data(as_text=True)
    f = form_fields(edit)
    assert f["name"] == "Web Contact"
    r = client.post(f"/contacts/{kid}/edit", data={**f, "title": "Buyer"})
    assert r.status_code == 302
    r = client.post(f"/contacts/{kid}/delete", data={"csrf_token": token})
    assert r.status_code == 302
    assert connection.execute(text("SELECT count(*) FROM contact WHERE id=:k"), {"k": kid}).scalar() == 0


def test_customer_login_sees_own_record_and_corrects_location(client, web_login, connection):
    web_login("customer")
    own = connection.execute(text("SELECT customer_id FROM app_user WHERE username='customer'")).scalar()
    html = client.get("/customers").get_data(as_text=True)
    assert row_ids(html) == [own]
    other = connection.execute(text("SELECT min(id) FROM customer WHERE id<>:i"), {"i": own}).scalar()
    assert client.get(f"/customers/{other}").status_code == 404
    assert client.get(f"/customers/{other}/edit").status_code == 404
    page = client.get(f"/customers/{own}/edit").get_data(as_text=True)
    assert 'name="name"' not in page and 'name="lon"' in page
    f = form_fields(page)
    r = client.post(f"/customers/{own}/edit", data={**f, "lon": "24.5", "lat": "60.5"})
    assert r.status_code == 302
    row = connection.execute(text("SELECT ST_X(geom), ST_Y(geom), geocode_quality FROM customer WHERE id=:i"),
                             {"i": own}).one()
    assert tuple(row) == (24.5, 60.5, "manual")
    r = client.post(f"/customers/{own}/edit", data={**f, "lon": "", "lat": ""})
    assert r.status_code == 200 and "not remove it" in r.get_data(as_text=True)
    assert connection.execute(text("SELECT geom IS NOT NULL FROM customer WHERE id=:i"), {"i": own}).scalar()


def test_executive_cannot_edit(client, web_login, connection):
    web_login("executive")
    cid = connection.execute(text("SELECT min(id) FROM customer")).scalar()
    assert client.get(f"/customers/{cid}").status_code == 200
    assert client.get(f"/customers/{cid}/edit").status_code == 403
    assert client.get("/customers/new").status_code == 403


@pytest.mark.parametrize("username,hidden", [("service", ["Credit rating", "Delivery notes", "Owner"]),
                                             ("logistics", ["Credit rating", "Level", "Owner"])])
def test_restricted_detail_pages_hide_fields(client, web_login, connection, username, hidden):
    web_login(username)
    html = client.get("/customers", query_string={"per_page": 25}).get_data(as_text=True)
    cid = row_ids(html)[0]
    connection.execute(text("UPDATE customer SET notes='SECRET-NOTE', credit_rating='AAA' WHERE id=:i"), {"i": cid})
    page = client.get(f"/customers/{cid}").get_data(as_text=True)
    assert "SECRET-NOTE" not in page and "AAA" not in page
    for label in hidden:
        assert f"<dt>{label}</dt>" not in page
    assert client.get(f"/customers/{cid}/edit").status_code == 403
