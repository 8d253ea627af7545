"""The logistics user plans tomorrow's Helsinki deliveries on the page (background solve
with progress polling), sees the routes on the map and downloads the GPX."""
from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
import xmlschema
from lxml import etree

from tests.conftest import AS_OF


pytestmark = pytest.mark.usefixtures("no_login_rate_limit")

GPX_XSD = Path(__file__).resolve().parents[1] / "data" / "gpx11.xsd"


@pytest.mark.browser
def test_logistics_plans_tomorrow_sees_map_and_downloads_gpx(page, browser_login):
    browser_login("logistics")
    page.goto("/routes")
    assert page.locator("select#branch option").all_inner_texts() == ["BR-HEL · Helsinki City Depot"]
    page.fill("#plan-date", (AS_OF + timedelta(days=1)).isoformat())
    page.fill("#time-limit", "3")
    page.click("#plan-button")
    page.wait_for_url("**/routes?plan=*")
    # the solve runs in the background: the page polls and reloads when planned
    page.wait_for_selector("#plan-status:text-is('planned')", timeout=60_000)
    page.wait_for_selector("#route-map .leaflet-overlay-pane path", timeout=15_000)
    lines = page.locator("#route-map .leaflet-overlay-pane path").count()
    markers = page.locator("#route-map .geocrm-stop").count()
    rows = page.locator("#stop-table tbody tr[data-seq]").count()
    assert lines >= 1 and rows > 10 and markers == rows
    first = page.locator("#stop-table tbody tr[data-seq]").first
    assert first.get_attribute("data-seq") == "1"
    with page.expect_download() as dl:
        page.click("a[data-export=gpx]")
    path = dl.value.path()
    assert dl.value.suggested_filename.endswith(".gpx")
    data = Path(path).read_bytes()
    xmlschema.XMLSchema(str(GPX_XSD)).validate(io.BytesIO(data))
    root = etree.fromstring(data)
    ns = {"g": "http://www.topografix.com/GPX/1/1"}
    assert len(root.findall("g:wpt", ns)) == rows
    assert len(root.findall("g:trk", ns)) == lines
