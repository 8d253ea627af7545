"""Pure rendering tests for the maps package (no server, no browser, no network)."""

from __future__ import annotations

import html as htmllib
import json
import re
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import folium
import numpy as np
import pytest
from bs4 import BeautifulSoup

import maps
from maps import vendor_spec
from maps._common import js_json
from maps.assets import ExternalAssetError, localize_figure

from tests.maps.conftest import EVIL, EVIL_SCRIPT, ROOT

TILE_URL = "https://tiles.example.org/osm/{z}/{x}/{y}.png"


def _page(builders, names, **kw):
    m = maps.base_map((48.2, 16.4), 8, **kw)
    for n in names:
        builders[n](m)
    folium.LayerControl().add_to(m)
    return maps.render_page(m, nonce="testnonce123")


def _links(html):
    soup = BeautifulSoup(html, "html.parser")
    return ([s["src"] for s in soup.find_all("script", src=True)]
            + [l["href"] for l in soup.find_all("link", href=True)
               if l["href"] != "data:,"])  # render_page's empty favicon


@pytest.mark.parametrize("builder", ["regions", "outline", "branches", "partners",
                                     "customers_cluster", "heat", "customer_tiles",
                                     "routes", "choropleth", "draw", "ALL"])
def test_no_external_urls(builders, builder):
    names = list(builders) if builder == "ALL" else [builder]
    html = _page(builders, names, tile_url=TILE_URL, tile_attribution="Tiles: example")
    links = _links(html)
    assert links, "expected script/stylesheet links"
    for url in links:
        assert url.startswith("/static/vendor/"), url
        assert not re.match(r"^(https?:)?//", url), url
    # The only absolute URL anywhere in the page is the configured tile template.
    others = [u for u in re.findall(r"https?://[^\s\"'<>\\]+", html)
              if u != TILE_URL]
    assert others == []
    # every linked file is one that scripts/vendor_assets.py produces
    produced = {"/static/vendor/" + vendor_spec.relative_path(n) for n in vendor_spec.FILES}
    assert set(links) <= produced


def test_unwanted_folium_defaults_dropped(builders):
    html = _page(builders, list(builders))
    for dropped in ("jquery", "bootstrap", "awesome-markers", "fontawesome", "glyphicons"):
        assert dropped not in html.lower()


def test_static_base_configurable(builders):
    m = maps.base_map((0, 0), 2, static_base="/assets/v1/")
    builders["customers_cluster"](m)
    links = _links(maps.render_page(m))
    assert links and all(u.startswith("/assets/v1/") for u in links)
    # render_parts may override it per call
    parts = maps.render_parts(m, static_base="https://static.example.net/vendor")
    assert "https://static.example.net/vendor/leaflet/leaflet.js" in parts.head_html


def test_plain_folium_map_is_localized_too():
    m = folium.Map(location=(0, 0), tiles=None)
    folium.Marker((0, 0)).add_to(m)
    parts = maps.render_parts(m)
    assert "cdn." not in parts.head_html and "//" not in "".join(_links(str(parts.head_html)))


def test_unknown_external_asset_is_an_error():
    m = maps.base_map((0, 0), 2)

    class Plugin(folium.elements.JSCSSMixin):
        default_js = [("mystery", "https://cdn.example.com/x.js")]

    Plugin().add_to(m)
    with pytest.raises(ExternalAssetError):
        maps.render_page(m)


def test_no_tile_url_means_no_tile_layer_and_attribution_always_present(regions_fc):
    m = maps.base_map((48.2, 16.4), 8, outline=regions_fc, attribution_extra=["Acme <b>data</b>"])
    html = maps.render_page(m)
    assert "L.tileLayer" not in html
    assert "geocrm-nobasemap" in html
    script = BeautifulSoup(html, "html.parser").find_all("script")[-1].string
    entries = json.loads(re.search(r"GeoCRM\.attribution\([^,]+,\s*(\[.*?\])\);", script).group(1))
    assert entries[:3] == ["© OpenStreetMap contributors (ODbL)", "GeoNames (CC BY 4.0)",
                           "Natural Earth"]
    assert entries[3] == "Acme &lt;b&gt;data&lt;/b&gt;"  # Leaflet inserts attributions as HTML


def test_tile_layer_with_escaped_attribution():
    m = maps.base_map((0, 0), 3, tile_url=TILE_URL, tile_attribution="<script>x</script> OSM")
    html = maps.render_page(m)
    assert "L.tileLayer" in html and TILE_URL in html
    assert "<script>x</script>" not in html


# ---------------------------------------------------------------------------- escaping

def test_hostile_names_are_only_json_data(builders):
    html = _page(builders, list(builders))
    # Never present as markup anywhere, nor can data close a <script> element.
    assert EVIL not in html
    assert EVIL_SCRIPT not in html
    assert "<script>alert(2)" not in html
    soup = BeautifulSoup(html, "html.parser")
    assert soup.find("img") is None
    # Present as \u-escaped JSON string data that the JS renders with textContent.
    assert js_json(EVIL) in html
    # The layer control inserts names as HTML in Leaflet: we pass them escaped.
    from folium.template import _to_escaped_json

    assert _to_escaped_json(htmllib.escape(f"Regions {EVIL}", quote=False)) in html


def test_client_helpers_never_use_innerhtml():
    js = (ROOT / "maps" / "js" / "geocrm.js").read_text()
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", js, flags=re.S)
    assert "innerHTML" not in code and "insertAdjacentHTML" not in code
    assert "document.write" not in code and "eval(" not in code
    assert "textContent" in code


def test_record_url_must_be_safe(branches):
    for bad in ("javascript:alert(1)//{id}", "//evil.example/{id}", "data:text/html,x"):
        with pytest.raises(ValueError):
            maps.branches_layer(branches, record_url=bad)


def test_customer_tiles_url_and_layer_name():
    layer = maps.customer_tiles_layer(filters={"level": "A", "q": "{x}<b>", "skip": None})
    assert layer.url.startswith("/api/v1/tiles/customers/{z}/{x}/{y}.mvt?")
    assert "level=A" in layer.url and "q=%7Bx%7D%3Cb%3E" in layer.url
    assert "skip" not in layer.url
    assert layer.config["layerName"] == "customers"
    assert layer.config["countProperty"] == "count"
    with pytest.raises(ValueError):
        maps.customer_tiles_layer("/tiles/{z}/{x}.mvt")


# ---------------------------------------------------------------------------- page / CSP

def test_render_parts_nonce_and_embedding(builders):
    m = maps.base_map((48.2, 16.4), 8)
    for b in builders.values():
        b(m)
    parts = maps.render_parts(m, nonce="abcDEF123+/=")
    for part in (parts.head_html, parts.body_html, parts.script_html):
        for tag in re.findall(r"<(?:script|style)\b[^>]*>", str(part)):
            assert 'nonce="abcDEF123+/="' in tag, tag
    assert parts.script_html.startswith("<script")
    assert f'id="{parts.map_id}"' in parts.body_html
    assert "html, body" not in parts.head_html  # not restyling the app layout
    assert "html, body" in maps.render_page(m)  # standalone page keeps it
    with pytest.raises(ValueError):
        maps.render_parts(m, nonce='x" onload="alert(1)')


def test_render_page_escapes_title():
    html = maps.render_page(maps.base_map((0, 0), 2), title=EVIL)
    assert "<title>&lt;img src=x onerror=alert(1)&gt;</title>" in html


# ---------------------------------------------------------------------------- choropleth

def _values(fc):
    return np.array([f["properties"]["v"] for f in fc["features"]], dtype=float)


@pytest.fixture
def value_fc():
    rng = np.random.default_rng(42)
    vals = np.round(np.concatenate([rng.normal(10, 2, 12), rng.normal(40, 3, 8),
                                    rng.normal(90, 5, 5)]), 2)
    feats = [{"type": "Feature", "properties": {"id": i, "name": f"R{i}", "v": float(v)},
              "geometry": {"type": "Polygon", "coordinates": _sq(i)}} for i, v in enumerate(vals)]
    feats.append({"type": "Feature", "properties": {"id": 99, "name": "none", "v": None},
                  "geometry": {"type": "Polygon", "coordinates": _sq(99)}})
    return {"type": "FeatureCollection", "features": feats}


def _sq(i):
    x, y = (i % 10) * 0.5, (i // 10) * 0.5
    return [[[x, y], [x + .4, y], [x + .4, y + .4], [x, y + .4], [x, y]]]


def _legend_breaks(res):
    html = str(res.legend.html)
    uppers = [float(u) for u in re.findall(r'data-upper="([^"]+)"', html)]
    counts = [int(c) for c in re.findall(r'data-class="\d+"[^>]*data-count="(\d+)"', html)]
    return uppers, counts


def test_quantiles_match_numpy(value_fc):
    y = _values(value_fc)
    y = y[np.isfinite(y)]
    res = maps.choropleth(value_fc, "v", scheme="quantiles", k=5)
    expected = np.quantile(y, np.linspace(0, 1, 6)[1:])
    np.testing.assert_allclose(res.breaks, expected)
    assert sum(res.counts) == len(y) and res.no_data == 1
    assert _legend_breaks(res) == (res.breaks, res.counts)


def test_equal_interval_by_hand(value_fc):
    y = _values(value_fc)
    y = y[np.isfinite(y)]
    res = maps.choropleth(value_fc, "v", scheme="equal_interval", k=4)
    lo, hi = y.min(), y.max()
    expected = [lo + (hi - lo) * i / 4 for i in range(1, 5)]
    np.testing.assert_allclose(res.breaks, expected)
    expected_counts = [int(((y > (expected[i - 1] if i else -np.inf)) & (y <= b)).sum())
                       for i, b in enumerate(expected)]
    assert res.counts == expected_counts
    assert _legend_breaks(res) == (res.breaks, res.counts)


def test_jenks_is_the_optimal_partition(value_fc):
    y = np.sort(_values(value_fc)[np.isfinite(_values(value_fc))])
    k = 3
    res = maps.choropleth(value_fc, "v", scheme="jenks", k=k)

    def sdam(parts):
        return sum(((p - p.mean()) ** 2).sum() for p in parts)

    best = min((sdam(np.split(y, cuts)), cuts) for cuts in
               (list(c) for c in combinations(range(1, len(y)), k - 1)))[1]
    expected = [float(p.max()) for p in np.split(y, best)]
    np.testing.assert_allclose(res.breaks, expected)
    assert _legend_breaks(res) == (res.breaks, res.counts)
    # the three synthetic groups are recovered
    assert res.counts == [12, 8, 5]


def test_choropleth_colours_legend_and_escaping(regions_fc):
    res = maps.choropleth(regions_fc, "customers", k=3, colors=["#ffffff", "#000000"],
                          title=EVIL)
    assert len(res.colors) == res.k == 3 and res.colors[0] == "#ffffff" and res.colors[-1] == "#000000"
    legend = str(res.legend.html)
    assert EVIL not in legend and "&lt;img src=x onerror=alert(1)&gt;" in legend
    assert "No data" in legend and res.no_data == 1
    m = maps.base_map((48, 16), 6)
    res.add_to(m)
    html = maps.render_page(m)
    assert legend in html
    assert 'style="' not in legend  # colours come from a nonce'd <style> block
    fills = [f["properties"]["__fill"] for f in res.layer.data["features"]]
    assert fills[2] == "#cccccc"  # the feature without a value
    with pytest.raises(ValueError):
        maps.choropleth(regions_fc, "customers", scheme="natural")


# ---------------------------------------------------------------------------- vendor script

def test_vendor_script_fails_clearly_without_npm(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "vendor_assets.py"),
                           "--out", str(tmp_path / "out")],
                          env={"PATH": str(tmp_path)}, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "npm" in proc.stdout and "not found" in proc.stdout
    assert not (tmp_path / "out").exists()


def test_vendor_spec_covers_every_folium_link_we_keep():
    from maps.assets import FOLIUM_LINKS

    for logical in filter(None, FOLIUM_LINKS.values()):
        assert logical in vendor_spec.FILES
    pkg = json.loads((ROOT / "package.json").read_text())
    assert set(vendor_spec.PACKAGES) <= set(pkg["dependencies"])
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in pkg["dependencies"].values())
