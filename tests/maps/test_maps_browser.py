"""One end-to-end check in headless Chromium (Playwright, Debian's /usr/bin/chromium).

A rendered page plus geo_crm/static/vendor are served from 127.0.0.1 with a
strict nonce-based Content-Security-Policy; every request elsewhere is aborted.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import folium
import pytest

from tests.maps.conftest import EVIL, ROOT

CHROMIUM = "/usr/bin/chromium"
VENDOR = ROOT / "geo_crm" / "static" / "vendor"
NONCE = "bm9uY2UtZm9yLXRlc3Rz"
CSP = ("default-src 'self'; script-src 'self' 'nonce-{n}'; style-src 'self' 'nonce-{n}'; "
       "img-src 'self' data: blob:; worker-src 'self' blob:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'").format(n=NONCE)

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                 reason=f"{CHROMIUM} is missing (apt-get install chromium)")]


def _ensure_vendor():
    if (VENDOR / "manifest.json").exists():
        return
    args = [sys.executable, str(ROOT / "scripts" / "vendor_assets.py")]
    if (ROOT / "node_modules" / "leaflet").is_dir():
        args.append("--skip-npm")
    subprocess.run(args, check=True)


class _Handler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        if self.path.split("?")[0].endswith(".html"):
            self.send_header("Content-Security-Policy", CSP)
        super().end_headers()

    def do_GET(self):
        if ".mvt" in self.path:  # an empty tile is a valid MVT with no layers
            self.server.tile_requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.mapbox-vector-tile")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path, builders):
    import maps

    _ensure_vendor()
    m = maps.base_map((48.2, 16.4), 8)
    for b in builders.values():
        b(m)
    folium.LayerControl(collapsed=False).add_to(m)
    (tmp_path / "map.html").write_text(maps.render_page(m, nonce=NONCE, title=EVIL))
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "vendor").symlink_to(VENDOR)
    handler = functools.partial(_Handler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.tile_requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, m.get_name()
    finally:
        server.shutdown()
        server.server_close()


def test_map_in_headless_chromium(served, browser):
    server, map_var = served
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    errors, failed, dialogs, blocked = [], [], [], []
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)

        def guard(route):
            if route.request.url.startswith(origin + "/"):
                route.continue_()
            else:
                blocked.append(route.request.url)
                route.abort()

        page.route("**/*", guard)
        page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("requestfailed", lambda req: failed.append(req.url))
        page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

        page.goto(origin + "/map.html", wait_until="load")
        page.wait_for_function(f"window.{map_var} && {map_var}._loaded === true")
        page.wait_for_timeout(500)

        # Leaflet initialised, with every layer type
        assert page.evaluate(f"{map_var}.getZoom()") == 8
        assert page.locator(".leaflet-overlay-pane path").count() > 0
        assert page.locator(".geocrm-pin").count() == 2          # branch + partner
        assert page.locator(".marker-cluster").count() > 0        # markercluster
        assert page.locator(".geocrm-stop").count() == 2          # numbered stops
        assert page.locator(".leaflet-heatmap-layer").count() == 1
        assert page.locator(".leaflet-pm-toolbar").count() > 0    # geoman
        assert page.locator(".geocrm-legend-control li").count() == 3  # 2 classes + no data
        assert server.tile_requests and "level=A" in server.tile_requests[0]
        attribution = page.locator(".leaflet-control-attribution").inner_text()
        for text in ("© OpenStreetMap contributors (ODbL)", "GeoNames (CC BY 4.0)",
                     "Natural Earth"):
            assert text in attribution

        # Hostile name: shown as text in the popup, never parsed as HTML
        page.locator(".geocrm-pin--branch").click()
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for()
        assert popup.locator(".geocrm-popup-title").inner_text() == EVIL
        assert popup.locator("img").count() == 0
        assert popup.locator("a").get_attribute("href") == "/branches/7"
        assert page.title() == EVIL

        # Layer control: the hostile layer name is text, and toggling works
        label = page.locator(".leaflet-control-layers-overlays label",
                             has_text=f"Regions {EVIL}")
        assert label.count() == 1
        n_paths = page.locator(".leaflet-overlay-pane path").count()
        assert page.evaluate(
            "() => Object.values(window).some(v => v instanceof L.GeoJSON && v._map)")
        label.locator("input").uncheck()
        assert page.locator(".leaflet-overlay-pane path").count() == n_paths - 4
        label.locator("input").check()
        assert page.locator(".leaflet-overlay-pane path").count() == n_paths

        # Draw control dispatches geocrm:draw with GeoJSON (+ radius for circles)
        detail = page.evaluate(f"""() => new Promise(resolve => {{
            document.addEventListener('geocrm:draw', e => resolve(e.detail), {{once: true}});
            {map_var}.fire('pm:create', {{shape: 'Circle',
                layer: L.circle([48.2, 16.4], {{radius: 1500}})}});
        }})""")
        assert detail["action"] == "create" and detail["shape"] == "Circle"
        assert detail["radius_m"] == 1500
        assert detail["geojson"]["geometry"] == {"type": "Point", "coordinates": [16.4, 48.2]}
    finally:
        context.close()

    assert dialogs == []
    assert errors == []
    assert failed == []
    assert blocked == []
