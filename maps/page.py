"""Turn a folium map into HTML: parts for the app's own Jinja layout, or a whole page.

Every ``<script>`` and ``<style>`` element gets ``nonce="..."`` when a nonce is
given, for a strict Content-Security-Policy such as::

    default-src 'self'; script-src 'self' 'nonce-<n>'; style-src 'self' 'nonce-<n>';
    img-src 'self' data: blob: <tile host>; worker-src blob:

Script/stylesheet links always point at the local vendor folder (see
:mod:`maps.assets`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import folium
from branca.element import Figure
from markupsafe import Markup, escape

from maps.assets import LocalAssetsFigure, localize_figure, normalize_static_base

_NONCE_RE = re.compile(r"^[A-Za-z0-9+/_=-]{8,200}$")
_OPEN_TAG = re.compile(r"<(script|style)(?=[\s>])(?![^>]*\bnonce=)", re.IGNORECASE)
# folium.Map's page-wide styles, unwanted when the map is embedded in the app layout.
_GLOBAL_STYLES = [
    re.compile(r"<style>\s*html,\s*body\s*\{[^}]*\}\s*</style>", re.S),
    re.compile(r"<style>\s*#map\s*\{[^}]*\}\s*</style>", re.S),
]


@dataclass(frozen=True)
class MapParts:
    """``head_html`` goes in ``<head>`` (links, styles), ``body_html`` where the map
    should appear (the map ``<div>``; give its container a height), ``script_html``
    at the end of ``<body>``. All three are ``markupsafe.Markup`` (Jinja: no ``|safe``)."""

    head_html: Markup
    body_html: Markup
    script_html: Markup
    map_id: str


def _check_nonce(nonce: Optional[str]) -> Optional[str]:
    if nonce is None:
        return None
    if not _NONCE_RE.match(nonce):
        raise ValueError("nonce must be 8-200 base64/base64url characters")
    return nonce


def add_nonce(html: str, nonce: Optional[str]) -> str:
    """Add ``nonce`` to every ``<script>``/``<style>`` opening tag lacking one."""
    if not nonce:
        return html
    return _OPEN_TAG.sub(lambda m: f'<{m.group(1)} nonce="{nonce}"', html)


def _figure_of(m: folium.Map, static_base: Optional[str]) -> Figure:
    figure = m.get_root()
    if not isinstance(figure, Figure) or figure is m:
        figure = LocalAssetsFigure(static_base=static_base)
        figure.add_child(m)
    return figure


def render_parts(m: folium.Map, *, nonce: Optional[str] = None,
                 static_base: Optional[str] = None, standalone: bool = False) -> MapParts:
    """Render ``m`` into three HTML fragments for the app's Jinja template.

    ``static_base`` overrides the one given to :func:`maps.base.base_map`.
    Unless ``standalone``, folium's page-wide ``html, body {...}``/``#map {...}``
    styles are left out so they do not restyle the app layout.
    """
    nonce = _check_nonce(nonce)
    figure = _figure_of(m, static_base)
    base = normalize_static_base(static_base if static_base is not None
                                 else getattr(figure, "static_base", None))
    for child in figure._children.values():
        child.render()
    localize_figure(figure, base)
    head = figure.header.render()
    if not standalone:
        for rx in _GLOBAL_STYLES:
            head = rx.sub("", head)
    body = figure.html.render()
    script = "<script>\n" + figure.script.render() + "\n</script>"
    return MapParts(head_html=Markup(add_nonce(head, nonce)),
                    body_html=Markup(add_nonce(body, nonce)),
                    script_html=Markup(add_nonce(script, nonce)),
                    map_id=m.get_name())


def render_page(m: folium.Map, *, title: str = "Map", nonce: Optional[str] = None,
                static_base: Optional[str] = None, lang: str = "en",
                extra_head: str = "", extra_body: str = "") -> str:
    """A complete standalone HTML document (e.g. a printable driver sheet).

    ``title`` is escaped; ``extra_head``/``extra_body`` are trusted HTML inserted
    as-is (they get the nonce on their script/style tags too).
    """
    parts = render_parts(m, nonce=nonce, static_base=static_base, standalone=True)
    doc = (
        "<!DOCTYPE html>\n"
        f'<html lang="{escape(lang)}">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n"
        '<link rel="icon" href="data:,">\n'  # no favicon request
        f"{parts.head_html}\n{extra_head}\n</head>\n"
        f"<body>\n{parts.body_html}\n{extra_body}\n{parts.script_html}\n</body>\n</html>\n"
    )
    return add_nonce(doc, _check_nonce(nonce))
