"""Offline geocoder on the Helsinki gazetteer: held-out noisy addresses, fallbacks,
reverse geocoding, manual corrections, online provider via a local stub server."""
import csv
import json
import math
import statistics
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from sqlalchemy import text

from geo_crm.geocoding import geocode, normalise_street, parse_address, reverse
from geo_crm.geocoding.batch import geocode_customers
from geo_crm.geocoding.providers import Nominatim
from geo_crm.security.scope import Scope

EVAL = Path(__file__).parent / "data" / "geocode_eval.csv"


def haversine_m(lon1, lat1, lon2, lat2):
    p = math.pi / 180
    a = math.sin((lat2 - lat1) * p / 2) ** 2 + math.cos(lat1 * p) * math.cos(lat2 * p) * math.sin((lon2 - lon1) * p / 2) ** 2
    return 2 * 6371008.8 * math.asin(math.sqrt(a))


def test_normalisation():
    assert normalise_street("Mannerheimint.") == "mannerheimintie"
    assert normalise_street("Alexandersg.") == "aleksanterinkatu"
    assert normalise_street("Norra Esplanaden") == "pohjoisesplanadi"
    p = parse_address("Hämeenk. 12 B 5, 00100 Helsinki")
    assert (p.street_norm, p.housenumber, p.postcode, p.city) == ("hämeenkatu", "12b", "00100", "helsinki")


def test_eval_match_rate_and_median_error(db_session):
    rows = list(csv.DictReader(open(EVAL, encoding="utf-8")))
    assert len(rows) == 100
    errors, matched = [], 0
    for r in rows:
        res = geocode(db_session, r["query"], providers=[])
        if res.quality in ("exact", "address", "street"):
            matched += 1
            errors.append(haversine_m(res.lon, res.lat, float(r["lon"]), float(r["lat"])))
    median = statistics.median(errors)
    print(f"geocode eval: matched {matched}/100, median error {median:.1f} m")
    assert matched >= 85
    assert median < 50


def test_fallbacks(db_session):
    assert geocode(db_session, "Kaivokatu 1", providers=[]).quality == "exact"
    assert geocode(db_session, "Kaivokatu", providers=[]).quality == "street"
    pc = geocode(db_session, "Olematon Kuja 99", "00100", providers=[])
    assert pc.quality == "postcode"
    city = geocode(db_session, "Olematon Kuja 99", city="Tampere", providers=[])
    assert city.quality == "city" and 23.5 < city.lon < 24 and 61.4 < city.lat < 61.6
    assert geocode(db_session, "Xyzzy 1", providers=[]).quality == "none"


def test_reverse(db_session):
    r = reverse(db_session, 24.9414566, 60.1713198)
    assert r["kind"] == "address" and r["street"] == "Kaivokatu" and r["distance_m"] < 1
    far = reverse(db_session, 27.68, 62.89)   # Kuopio: no address points there
    assert far["kind"] == "place"


def test_batch_missing_never_touches_manual(db_session):
    db_session.execute(text(
        "INSERT INTO customer (code, name, address, postcode, city) VALUES"
        " ('GEO-1', 'Geo One', 'Kaivokatu 1', '00100', 'Helsinki'),"
        " ('GEO-2', 'Geo Two', 'Ei Löydy 5', '', '')"))
    db_session.execute(text(
        "INSERT INTO customer (code, name, address, geom, geocode_quality) VALUES"
        " ('GEO-3', 'Manual', 'Kaivokatu 1', ST_SetSRID(ST_MakePoint(25.0, 60.2), 4326), 'manual')"))
    counts = geocode_customers(db_session, Scope.system(), missing_only=False, providers=[])
    got = dict(db_session.execute(text(
        "SELECT code, geocode_quality || ':' || coalesce(round(ST_X(geom)::numeric, 3)::text, '-')"
        " FROM customer WHERE code LIKE 'GEO-%'")).all())
    assert got["GEO-1"].startswith("exact:24.941")
    assert got["GEO-2"] == "none:-"
    assert got["GEO-3"] == "manual:25.000"
    assert counts.get("none", 0) >= 1
    region = db_session.execute(text("SELECT region_id FROM customer WHERE code = 'GEO-1'")).scalar()
    assert region is not None   # membership triggers ran


@pytest.fixture()
def stub_nominatim():
    calls = []

    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            calls.append(self.path)
            body = json.dumps([{"lon": "23.7610", "lat": "61.4978", "addresstype": "house",
                                "display_name": "Hämeenkatu 1, Tampere"}]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass
    srv = HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}", calls
    srv.shutdown()


def test_online_provider_used_when_offline_fails_and_cached(db_session, stub_nominatim):
    url, calls = stub_nominatim
    prov = Nominatim(url, rate_per_s=50, timeout_s=2)
    r1 = geocode(db_session, "Hämeenkatu 1, 33100 Tampere", providers=[prov])
    r2 = geocode(db_session, "Hämeenkatu 1, 33100 Tampere", providers=[prov])
    assert r1.source == "nominatim" and r1.quality == "address" and abs(r1.lon - 23.761) < 1e-6
    assert r2 == r1 and len(calls) == 1        # second answer from geocode_cache
    # an offline exact hit never calls the provider
    assert geocode(db_session, "Kaivokatu 1", providers=[prov]).source == "offline" and len(calls) == 1


def test_online_provider_timeout_is_not_found(db_session):
    prov = Nominatim("http://127.0.0.1:9", rate_per_s=50, timeout_s=0.5)   # nothing listens on port 9
    assert geocode(db_session, "Ei Mitään 1", providers=[prov]).quality == "none"
