"""Serve every map asset locally: rewrite folium's CDN links to the vendor folder.

folium (and its plugins) declare their JavaScript/CSS as CDN URLs in
``default_js`` / ``default_css``. geo-crm never loads anything from a CDN
(offline machines, users' privacy), so at render time every such link in the
page header is either

* rewritten to ``<static_base>/<package>/<file>`` (files copied there from npm
  by ``scripts/vendor_assets.py``), or
* dropped, when the feature it serves is not used by geo-crm maps (jQuery,
  Bootstrap, glyphicons, Font Awesome, Leaflet.awesome-markers: they only back
  ``folium.Icon``, which the :mod:`maps` builders do not use).

Any other absolute ``http(s)://`` or protocol-relative link raises
:class:`ExternalAssetError`, so a new plugin cannot silently reintroduce a CDN.

The only external URL a rendered map may contain is the operator-configured
tile URL template (see :func:`maps.base.base_map`).
"""

from __future__ import annotations

import re
from typing import Optional

from branca.element import CssLink, Element, Figure, JavascriptLink

from maps import vendor_spec

DEFAULT_STATIC_BASE = "/static/vendor"

#: URL scheme used by the maps builders for their own assets: ``vendor:<logical name>``.
VENDOR_SCHEME = "vendor:"

#: folium's link names -> logical vendor name, or None to drop the link.
FOLIUM_LINKS: dict[str, Optional[str]] = {
    # folium.Map
    "leaflet": "leaflet_js",
    "leaflet_css": "leaflet_css",
    "jquery": None,
    "bootstrap": None,
    "bootstrap_css": None,
    "glyphicons_css": None,
    "awesome_markers": None,
    "awesome_markers_font_css": None,
    "awesome_markers_css": None,
    "awesome_rotate_css": None,
    # folium.plugins.MarkerCluster
    "markerclusterjs": "markercluster_js",
    "markerclustercss": "markercluster_css",
    "markerclusterdefaultcss": "markercluster_default_css",
    # folium.plugins.HeatMap
    "leaflet-heat.js": "leaflet_heat_js",
    # folium.plugins.GeoMan
    "leaflet_geoman_js": "geoman_js",
    "leaflet_geoman_css": "geoman_css",
    # folium.plugins.VectorGridProtobuf
    "vectorGrid": "vectorgrid_js",
}

_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)


class ExternalAssetError(ValueError):
    """A script/stylesheet link would be loaded from another host."""


def normalize_static_base(static_base: Optional[str]) -> str:
    base = DEFAULT_STATIC_BASE if static_base is None else str(static_base)
    return base.rstrip("/")


def vendor_url(logical_name: str, static_base: Optional[str] = None) -> str:
    """Local URL of a vendored file, e.g. ``vendor_url("leaflet_js")`` ->
    ``"/static/vendor/leaflet/leaflet.js"``."""
    return f"{normalize_static_base(static_base)}/{vendor_spec.relative_path(logical_name)}"


def vendor_link(logical_name: str) -> str:
    """Placeholder URL for a builder's ``default_js``/``default_css``."""
    if logical_name not in vendor_spec.FILES:
        raise KeyError(f"unknown vendored asset {logical_name!r}")
    return VENDOR_SCHEME + logical_name


def localize_figure(figure: Figure, static_base: Optional[str] = None) -> Figure:
    """Rewrite/drop the script and stylesheet links in ``figure.header``.

    Call after the figure's children were rendered (that is when folium adds
    its links) and before the header is rendered. Idempotent.
    """
    keep: list[tuple[str, Element]] = []
    for name, child in list(figure.header._children.items()):
        if isinstance(child, (JavascriptLink, CssLink)):
            url = str(child.url)
            if url.startswith(VENDOR_SCHEME):
                child.url = vendor_url(url[len(VENDOR_SCHEME):], static_base)
            elif name in FOLIUM_LINKS:
                logical = FOLIUM_LINKS[name]
                if logical is None:
                    continue  # feature not used by geo-crm: drop the link
                child.url = vendor_url(logical, static_base)
            elif _EXTERNAL.match(url):
                raise ExternalAssetError(
                    f"external asset {name!r} -> {url}: add it to maps/vendor_spec.py "
                    "and maps.assets.FOLIUM_LINKS (or drop it)"
                )
        keep.append((name, child))
    figure.header._children.clear()
    for name, child in keep:
        figure.header._children[name] = child
    return figure


class LocalAssetsFigure(Figure):
    """A branca Figure whose rendering never links to a CDN.

    ``render()`` renders the children (folium adds its links then), runs
    :func:`localize_figure` and only then renders the page template.
    """

    def __init__(self, *args, static_base: Optional[str] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.static_base = normalize_static_base(static_base)

    def render_children(self, **kwargs) -> None:
        for _name, child in self._children.items():
            child.render(**kwargs)
        localize_figure(self, self.static_base)

    def render(self, **kwargs) -> str:
        self.render_children(**kwargs)
        return self._template.render(this=self, kwargs=kwargs)
