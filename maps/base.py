"""The base map: configurable tiles, mandatory data attributions, local assets only.

Coordinates: ``center`` is ``(lat, lon)`` in WGS84 / EPSG:4326 degrees; the map
itself is displayed in Web Mercator (Leaflet's default EPSG:3857).
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

import folium
from branca.element import MacroElement
from folium.template import Template
from markupsafe import escape

from maps._common import GeoCrmAssets, js_json
from maps.assets import DEFAULT_STATIC_BASE, LocalAssetsFigure, normalize_static_base

#: Always shown in the attribution control (data the CRM's geography comes from).
REQUIRED_ATTRIBUTIONS: tuple[str, ...] = (
    "© OpenStreetMap contributors (ODbL)",
    "GeoNames (CC BY 4.0)",
    "Natural Earth",
)


class Attributions(GeoCrmAssets, MacroElement):
    """Adds plain-text attribution entries (HTML-escaped here, because Leaflet's
    attribution control inserts entries as HTML)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            GeoCRM.attribution({{ this._parent.get_name() }}, {{ this.entries_json }});
        {% endmacro %}
    """)

    def __init__(self, entries: Iterable[str]):
        super().__init__()
        self._name = "GeoCrmAttributions"
        self.entries = [str(escape(e)) for e in entries]

    @property
    def entries_json(self) -> str:
        return js_json(self.entries)


class _NoBasemapClass(MacroElement):
    """Marks the map container so CSS gives it a light land-like background."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            L.DomUtil.addClass({{ this._parent.get_name() }}.getContainer(), "geocrm-nobasemap");
        {% endmacro %}
    """)


def base_map(
    center: Sequence[float],
    zoom: int,
    *,
    tile_url: Optional[str] = None,
    tile_attribution: Optional[str] = None,
    static_base: str = DEFAULT_STATIC_BASE,
    attribution_extra: Iterable[str] = (),
    outline: Any = None,
    min_zoom: int = 2,
    max_zoom: int = 19,
    tile_max_native_zoom: int = 19,
    width: str = "100%",
    height: str = "100%",
    control_scale: bool = True,
    prefer_canvas: bool = False,
    **map_kwargs: Any,
) -> folium.Map:
    """A ``folium.Map`` ready for geo-crm layers.

    * ``center``: ``(lat, lon)`` EPSG:4326; ``zoom``: initial zoom level.
    * ``tile_url``: XYZ template from the app config (``TILE_URL``), e.g.
      ``"/tiles/{z}/{x}/{y}.png"`` or an operator's tile server. It is the only
      external URL a rendered map may contain. ``tile_attribution`` is plain text
      (escaped). With no ``tile_url`` no tile layer is added at all: the map keeps
      working on a light background, and ``outline`` (a FeatureCollection, e.g.
      Natural Earth admin boundaries shipped with the app) is drawn as thin lines.
    * The attribution control always lists :data:`REQUIRED_ATTRIBUTIONS` plus
      ``attribution_extra`` (plain text, escaped).
    * ``static_base``: URL prefix under which ``geo_crm/static/vendor`` is served;
      all Leaflet/plugin JS and CSS are linked from there (see :mod:`maps.assets`).

    Rendering: use :func:`maps.page.render_parts` / :func:`maps.page.render_page`
    (``m.get_root().render()`` also works and also uses local assets only).
    """
    m = folium.Map(
        location=[float(center[0]), float(center[1])],
        zoom_start=int(zoom),
        tiles=None,
        min_zoom=min_zoom,
        max_zoom=max_zoom,
        width=width,
        height=height,
        control_scale=control_scale,
        prefer_canvas=prefer_canvas,
        **map_kwargs,
    )
    # folium only forwards min/max zoom to its own tile layer; Leaflet.markercluster
    # needs maxZoom on the map itself (and the map must stay zoomable without tiles).
    m.options["min_zoom"] = int(min_zoom)
    m.options["max_zoom"] = int(max_zoom)
    # Re-parent onto a figure that rewrites every CDN link to static_base.
    figure = LocalAssetsFigure(static_base=normalize_static_base(static_base))
    figure.add_child(m)
    m.static_base = figure.static_base

    if tile_url:
        folium.TileLayer(
            tiles=tile_url,
            attr=str(escape(tile_attribution or "")) or " ",
            name="Base map",
            overlay=False,
            control=False,
            min_zoom=min_zoom,
            max_zoom=max_zoom,
            max_native_zoom=tile_max_native_zoom,
        ).add_to(m)
    else:
        _NoBasemapClass().add_to(m)
    Attributions([*REQUIRED_ATTRIBUTIONS, *attribution_extra]).add_to(m)
    if outline is not None:
        from maps.layers import outline_layer

        outline_layer(outline).add_to(m)
    return m
