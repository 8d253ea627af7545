"""Who sees which customers: for every demo role, every way of reading customers
(list over all pages, the count, the CSV export, detail GETs, search suggestions)
yields exactly the set computed here independently, in SQL, from the role's rule.

Territory roles are checked against ST_Intersects with territory.geom itself (not the
stored customer_territory membership, which is what the app reads), so a stale
membership table would fail this test.
"""
from __future__ import annotations

import csv
import io
import random

import pytest
from sqlalchemy import text


pytestmark = pytest.mark.usefixtures("no_login_rate_limit")

URL = "/api/v1/customers"
ROLES = ["admin", "executive", "sales", "regional", "account", "service", "logistics", "customer"]

# role rule -> SQL over customer c, parameter :uid = the user's id
EXPECTED_SQL = {
    "all": "SELECT c.id FROM customer c",
    "territories": """SELECT c.id FROM customer c WHERE EXISTS (
        SELECT 1 FROM user_territory ut JOIN territory t ON t.id = ut.territory_id
         WHERE ut.user_id = :uid AND ST_Intersects(t.geom, c.geom))""",
    "owner": "SELECT c.id FROM customer c WHERE c.owner_id = :uid",
    "service": """SELECT c.id FROM customer c WHERE EXISTS (
        SELECT 1 FROM service_record s WHERE s.customer_id = c.id AND s.assignee_id = :uid)""",
    # inside the user's branch service area; where areas overlap the nearest branch serves
    "branch": """SELECT c.id FROM customer c JOIN app_user u ON u.id = :uid
        JOIN branch b ON b.id = u.branch_id
        WHERE ST_Intersects(b.service_area, c.geom) AND NOT EXISTS (
          SELECT 1 FROM branch b2 WHERE b2.id <> b.id AND ST_Intersects(b2.service_area, c.geom)
             AND (ST_Distance(b2.geom, c.geom) < ST_Distance(b.geom, c.geom)
                  OR (ST_Distance(b2.geom, c.geom) = ST_Distance(b.geom, c.geom) AND b2.id < b.id)))""",
    "self": "SELECT c.id FROM customer c JOIN app_user u ON u.customer_id = c.id WHERE u.id = :uid",
}
RULE = {"admin": "all", "executive": "all", "sales": "territories", "regional": "territories",
        "account": "owner", "service": "service", "logistics": "branch", "customer": "self"}
CAN_EXPORT = {"admin", "executive", "sales", "regional", "account", "logistics"}


def expected_ids(connection, username: str) -> set[int]:
    uid = connection.execute(text("SELECT id FROM app_user WHERE username = :u"), {"u": username}).scalar()
    return set(connection.execute(text(EXPECTED_SQL[RULE[username]]), {"uid": uid}).scalars())


def listed_ids(client, **params) -> tuple[list[int], int]:
    ids, cursor, matched = [], None, None
    while True:
        q = {"limit": 250, **params, **({"cursor": cursor} if cursor else {})}
        r = client.get(URL, query_string=q)
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
        ids += [f["id"] for f in body["features"]]
        matched = body["numberMatched"] if matched is None else matched
        assert body["numberMatched"] == matched  # the count does not move between pages
        cursor = body["next_cursor"]
        if not cursor:
            return ids, matched


def csv_ids(client) -> set[int] | None:
    r = client.get(URL, query_string={"format": "csv"})
    if r.status_code == 403:
        return None
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"), newline="")))
    ids = [int(x["id"]) for x in rows]
    assert len(ids) == len(set(ids))
    return set(ids)


@pytest.mark.parametrize("username", ROLES)
def test_every_read_path_matches_the_role_rule(api, connection, username):
    want = expected_ids(connection, username)
    every = set(connection.execute(text("SELECT id FROM customer")).scalars())
    if RULE[username] != "all":
        assert 0 < len(want) < len(every), f"{username}: the sample should make this role's rule bite"
    c = api(username)

    ids, matched = listed_ids(c)
    assert len(ids) == len(set(ids))
    assert set(ids) == want
    assert matched == len(want)

    exported = csv_ids(c)
    assert (exported is None) == (username not in CAN_EXPORT)
    if exported is not None:
        assert exported == want

    rng = random.Random(username)
    visible_sample = rng.sample(sorted(want), min(25, len(want)))
    hidden_sample = rng.sample(sorted(every - want), min(25, len(every - want)))
    missing = c.get(f"{URL}/999999999")
    assert missing.status_code == 404
    for cid in visible_sample:
        assert c.get(f"{URL}/{cid}").status_code == 200, cid
    for cid in hidden_sample:
        r = c.get(f"{URL}/{cid}")
        assert r.status_code == 404, cid
        assert r.get_data() == missing.get_data()  # indistinguishable from "does not exist"
        assert "ETag" not in r.headers
        assert c.get(f"{URL}/{cid}/contacts").status_code == 404

    codes = dict(connection.execute(text("SELECT id, code FROM customer")).all())
    for cid in visible_sample[:10] + hidden_sample[:10]:
        got = {s["id"] for s in c.get(f"{URL}/suggest", query_string={"q": codes[cid]}).get_json()["suggestions"]}
        assert (cid in got) == (cid in want), (username, cid)
        assert got <= want
    broad = {s["id"] for s in c.get(f"{URL}/suggest", query_string={"q": "oy", "limit": 50})
             .get_json()["suggestions"]}
    assert broad <= want


def test_redrawing_a_territory_changes_what_regional_sees(api, connection):
    before = expected_ids(connection, "regional")
    c = api("regional")
    assert c.get(URL, query_string={"limit": 1}).get_json()["numberMatched"] == len(before)
    tid = connection.execute(text(
        "SELECT ut.territory_id FROM user_territory ut JOIN app_user u ON u.id = ut.user_id "
        "WHERE u.username = 'regional' LIMIT 1")).scalar()
    # shrink the territory to the south-western quarter of its own bounding box
    connection.execute(text("""
        UPDATE territory SET geom = ST_Multi(ST_Intersection(geom, ST_MakeEnvelope(
            ST_XMin(geom), ST_YMin(geom), (ST_XMin(geom) + ST_XMax(geom)) / 2,
            (ST_YMin(geom) + ST_YMax(geom)) / 2, 4326)))
        WHERE id = :t"""), {"t": tid})
    after = expected_ids(connection, "regional")
    assert after < before and after, "the redraw should drop some but not all customers"
    ids, matched = listed_ids(c)
    assert set(ids) == after and matched == len(after)
    dropped = sorted(before - after)[0]
    assert c.get(f"{URL}/{dropped}").status_code == 404
