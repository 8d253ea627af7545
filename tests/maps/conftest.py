"""Shared fixtures for the maps tests: hostile data and one map per builder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `pytest` run without installing the project
    sys.path.insert(0, str(ROOT))

EVIL = "<img src=x onerror=alert(1)>"
EVIL_SCRIPT = "</script><script>alert(2)</script>"


def _square(x0, y0, d=1.0):
    return [[[x0, y0], [x0 + d, y0], [x0 + d, y0 + d], [x0, y0 + d], [x0, y0]]]


@pytest.fixture
def regions_fc():
    """Four squares around Vienna (EPSG:4326), one with a hostile name."""
    feats = []
    names = [EVIL, "North", EVIL_SCRIPT, "South & East"]
    values = [10.0, 25.0, None, 40.0]
    for i, (name, v) in enumerate(zip(names, values)):
        feats.append({"type": "Feature",
                      "properties": {"id": i + 1, "name": name, "color": "#d62728",
                                     "customers": v},
                      "geometry": {"type": "Polygon",
                                   "coordinates": _square(15.0 + i, 47.5)}})
    return {"type": "FeatureCollection", "features": feats}


@pytest.fixture
def customers_fc():
    feats = []
    for i in range(30):
        feats.append({"type": "Feature",
                      "properties": {"id": i, "name": EVIL if i == 0 else f"Customer {i}",
                                     "level": "ABCD"[i % 4], "city": EVIL_SCRIPT},
                      "geometry": {"type": "Point",
                                   "coordinates": [16.0 + (i % 6) * 0.1, 48.0 + (i // 6) * 0.1]}})
    return {"type": "FeatureCollection", "features": feats}


@pytest.fixture
def branches():
    return [{"id": 7, "name": EVIL, "lat": 48.21, "lon": 16.37, "address": EVIL_SCRIPT}]


@pytest.fixture
def routes():
    return [{"vehicle": EVIL, "path": [[48.2, 16.3], [48.3, 16.5], [48.1, 16.7]],
             "stops": [{"name": EVIL, "lat": 48.3, "lon": 16.5, "id": 3, "eta": "09:30"},
                       {"name": "B", "lat": 48.1, "lon": 16.7, "id": 4}]},
            {"vehicle": "Van 2", "path": [[48.0, 16.0], [48.05, 16.1]], "stops": []}]


@pytest.fixture
def builders(regions_fc, customers_fc, branches, routes):
    """name -> callable(map) adding one builder's output to the map."""
    import maps

    return {
        "regions": lambda m: maps.regions_layer(regions_fc, record_url="/territories/{id}",
                                                name=f"Regions {EVIL}").add_to(m),
        "outline": lambda m: maps.outline_layer(regions_fc).add_to(m),
        "branches": lambda m: maps.branches_layer(branches).add_to(m),
        "partners": lambda m: maps.partners_layer(
            [{**b, "lat": b["lat"] - 0.3} for b in branches]).add_to(m),
        "customers_cluster": lambda m: maps.customer_cluster_layer(customers_fc).add_to(m),
        "heat": lambda m: maps.heat_layer(customers_fc).add_to(m),
        "customer_tiles": lambda m: maps.customer_tiles_layer(
            filters={"level": "A", "q": EVIL}).add_to(m),
        "routes": lambda m: maps.routes_layer(routes).add_to(m),
        "choropleth": lambda m: maps.choropleth(regions_fc, "customers", k=2).add_to(m),
        "draw": lambda m: maps.draw_control().add_to(m),
    }
