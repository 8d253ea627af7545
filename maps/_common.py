"""Internal helpers shared by the builders (JSON embedding, package data, base layer)."""

from __future__ import annotations

import datetime as _dt
import decimal
import json
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from branca.element import Element, Figure
from folium.elements import JSCSSMixin
from folium.map import Layer
from markupsafe import escape

_PKG = Path(__file__).resolve().parent

_COLOR_RE = re.compile(r"^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,20}|(rgb|hsl)a?\([0-9.,%\s]+\))$")
_HEX_RE = re.compile(r"^#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?$")


@lru_cache(maxsize=None)
def package_text(relative: str) -> str:
    """Text of a package data file (``js/geocrm.js``, ``templates/geocrm.css``)."""
    return (_PKG / relative).read_text(encoding="utf-8")


def _json_default(obj: Any):
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return obj.item()
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy arrays
        return obj.tolist()
    if isinstance(obj, decimal.Decimal):
        return float(obj)
    if isinstance(obj, (_dt.date, _dt.datetime, _dt.time)):
        return obj.isoformat()
    if hasattr(obj, "__geo_interface__"):
        return obj.__geo_interface__
    raise TypeError(f"cannot JSON-encode {type(obj).__name__}")


def _clean_nan(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean_nan(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_nan(v) for v in obj]
    return obj


def js_json(obj: Any) -> str:
    """JSON for embedding inside an inline ``<script>``.

    ``<``, ``>``, ``&``, ``'`` and all non-ASCII (incl. U+2028/9) are \\u-escaped,
    so data can never close the script element or start markup; NaN/inf -> null.
    """
    text = json.dumps(_clean_nan(json.loads(json.dumps(obj, default=_json_default))),
                      ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026").replace("'", "\\u0027"))


def safe_color(value: Any, default: str) -> str:
    return value if isinstance(value, str) and _COLOR_RE.match(value) else default


def hex_color(value: str) -> str:
    """Validate a ``#rgb``/``#rrggbb`` colour (used where it ends up in CSS)."""
    if not isinstance(value, str) or not _HEX_RE.match(value):
        raise ValueError(f"expected a hex colour like '#1f77b4', got {value!r}")
    return value.lower()


def check_url_pattern(pattern: Optional[str], what: str = "record_url") -> Optional[str]:
    """Record URL patterns must be root-relative (``/customers/{id}``) or http(s)."""
    if pattern is None:
        return None
    if not isinstance(pattern, str) or not re.match(r"^(/(?!/)|https?://)", pattern, re.I):
        raise ValueError(f"{what} must start with '/' or http(s)://, got {pattern!r}")
    return pattern


def layer_label(name: str) -> str:
    """Leaflet's layer control inserts names as HTML: escape them here."""
    return str(escape(str(name)))


def fields_list(fields: Optional[Iterable]) -> list[list[str]]:
    """``[("city", "City"), "phone"]`` -> ``[["city", "City"], ["phone", "phone"]]``."""
    out = []
    for f in fields or ():
        if isinstance(f, str):
            out.append([f, f])
        else:
            prop, label = f
            out.append([str(prop), str(label)])
    return out


def as_feature_collection(data: Any) -> dict:
    """Accept a GeoJSON FeatureCollection (mapping or ``__geo_interface__``, e.g. a
    GeoDataFrame in EPSG:4326) or a list of Features; return a FeatureCollection dict."""
    if hasattr(data, "__geo_interface__"):
        data = data.__geo_interface__
    if isinstance(data, Mapping):
        if data.get("type") == "FeatureCollection":
            return {"type": "FeatureCollection", "features": list(data.get("features") or [])}
        if data.get("type") == "Feature":
            return {"type": "FeatureCollection", "features": [data]}
        raise ValueError("expected a GeoJSON FeatureCollection or Feature")
    return {"type": "FeatureCollection", "features": list(data)}


def points_to_features(items: Any, *, lat: str = "lat", lon: str = "lon") -> dict:
    """Points as a FeatureCollection. ``items`` is a FeatureCollection of Points or an
    iterable of mappings with ``lat``/``lon`` keys (EPSG:4326 degrees); the other
    keys become properties."""
    if hasattr(items, "__geo_interface__") or isinstance(items, Mapping):
        return as_feature_collection(items)
    feats = []
    for it in items:
        if isinstance(it, Mapping) and it.get("type") == "Feature":
            feats.append(it)
            continue
        props = {k: v for k, v in dict(it).items() if k not in (lat, lon)}
        feats.append({"type": "Feature", "properties": props,
                      "geometry": {"type": "Point", "coordinates": [float(it[lon]), float(it[lat])]}})
    return {"type": "FeatureCollection", "features": feats}


class GeoCrmAssets(JSCSSMixin):
    """Mixin: on render, put geocrm.js and geocrm.css (package data) inline in the
    page header, once per page, plus the vendored files in ``default_js``/``default_css``."""

    def render(self, **kwargs):
        figure = self.get_root()
        if isinstance(figure, Figure):
            figure.header.add_child(
                Element("<style>\n" + package_text("templates/geocrm.css") + "</style>"),
                name="geocrm_css")
            figure.header.add_child(
                Element("<script>\n" + package_text("js/geocrm.js") + "</script>"),
                name="geocrm_js")
        super().render(**kwargs)


class GeoCrmLayer(GeoCrmAssets, Layer):
    """Base class: an overlay whose script macro defines ``var <name> = <Leaflet layer>``.

    folium's ``Layer.render`` adds it to its parent map when ``show`` is true and
    ``folium.LayerControl`` lists it by its (escaped) name.
    """

    def __init__(self, name: str, *, show: bool = True, control: bool = True, overlay: bool = True):
        super().__init__(name=layer_label(name), overlay=overlay, control=control, show=show)
