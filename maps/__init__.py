"""geo-crm web-map builders (folium/Leaflet), independent of Flask and the database.

Builders take plain data (GeoJSON FeatureCollections, lists of dicts, URL
templates) and return folium objects or HTML parts. All input coordinates are
WGS84 / EPSG:4326 (GeoJSON ``[lon, lat]``, points ``lat``/``lon`` in degrees);
Leaflet displays them in Web Mercator (EPSG:3857).

All JavaScript/CSS is served locally from ``static_base`` (default
``/static/vendor``, filled by ``scripts/vendor_assets.py``); rendered pages
contain no CDN link. Data is JSON-embedded and rendered with ``textContent``.

Typical use::

    from maps import base_map, regions_layer, customer_tiles_layer, render_parts
    m = base_map((48.2, 16.37), 7, tile_url=cfg["TILE_URL"], tile_attribution=cfg["TILE_ATTRIBUTION"])
    regions_layer(regions_fc, record_url="/territories/{id}").add_to(m)
    customer_tiles_layer(filters={"level": "A"}).add_to(m)
    folium.LayerControl().add_to(m)
    parts = render_parts(m, nonce=csp_nonce)   # head_html, body_html, script_html
"""

from maps.assets import DEFAULT_STATIC_BASE, ExternalAssetError, localize_figure, vendor_url
from maps.base import REQUIRED_ATTRIBUTIONS, base_map
from maps.layers import (
    DEFAULT_LEVEL_COLORS,
    ChoroplethResult,
    Legend,
    branches_layer,
    choropleth,
    customer_cluster_layer,
    customer_tiles_layer,
    draw_control,
    heat_layer,
    outline_layer,
    partners_layer,
    point_markers_layer,
    regions_layer,
    routes_layer,
)
from maps.page import MapParts, add_nonce, render_page, render_parts

__all__ = [
    "DEFAULT_LEVEL_COLORS", "DEFAULT_STATIC_BASE", "REQUIRED_ATTRIBUTIONS", "ChoroplethResult",
    "ExternalAssetError", "Legend", "MapParts", "add_nonce", "base_map", "branches_layer",
    "choropleth", "customer_cluster_layer", "customer_tiles_layer", "draw_control", "heat_layer",
    "localize_figure", "outline_layer", "partners_layer", "point_markers_layer", "regions_layer",
    "render_page", "render_parts", "routes_layer", "vendor_url",
]
