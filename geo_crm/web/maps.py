"""Map pages: `/map` (customer map), `/map/density` (thematic map), `/map/territories`
(territory planning). Pages are built with the `maps` package from domain data; the
large customer layer comes from vector tiles, so the page stays small at any scale."""
from __future__ import annotations

import json
from urllib.parse import urlencode

import folium
from flask import Blueprint, current_app, render_template, request
from flask_babel import gettext as _
from pydantic import ValidationError
from sqlalchemy import func, select

import maps as mp
from geo_crm.customers.filters import CustomerFilter, FilterError
from geo_crm.http import csp_nonce, current_scope, read_db, require
from geo_crm.models import Branch, Dictionary, Partner, Region, Territory, User
from geo_crm.models.enums import CUSTOMER_LEVELS, CUSTOMER_STATUSES
from geo_crm.spatial import density as dens
from geo_crm.spatial import patterns
from geo_crm.territories import reports, service as tsvc, service_areas

bp = Blueprint("maps", __name__)

LEVEL_COLORS = {"key": "#d7301f", "major": "#fc8d59", "ordinary": "#3182bd", "small": "#9ecae1"}
FILTER_KEYS = ("q", "level", "status", "industry", "owner_id", "region_id", "territory_id")
METRICS = {"count": "Customers", "per_km2": "Customers per km²", "revenue": "Revenue, 12 months (EUR)",
           "per_10k_inhabitants": "Customers per 10,000 inhabitants"}
SCHEMES = ("quantiles", "jenks", "equal_interval")
HOT_COLORS = {"hot_99": "#b2182b", "hot_95": "#ef8a62", "hot_90": "#fddbc7", "cold_90": "#d1e5f0",
              "cold_95": "#67a9cf", "cold_99": "#2166ac"}


def _filter_from_args() -> tuple[CustomerFilter | None, dict, str | None]:
    raw: dict = {}
    for k in FILTER_KEYS:
        vals = [v for v in request.args.getlist(k) if v.strip()]
        if vals:
            raw[k] = vals if k in ("level", "status", "industry") else vals[-1]
    try:
        return (CustomerFilter.model_validate(raw) if raw else None), raw, None
    except (ValidationError, FilterError) as e:
        return None, {}, str(e).splitlines()[0]


def _regions_fc(s, tolerance=0.01) -> dict:
    rows = s.execute(select(Region.id, Region.name, Region.code, func.ST_AsGeoJSON(
        func.ST_SimplifyPreserveTopology(Region.geom, tolerance), 5)).order_by(Region.name)).all()
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": r[0], "geometry": json.loads(r[3]),
         "properties": {"id": r[0], "name": r[1], "code": r[2]}} for r in rows]}


def _sites(s, model) -> list[dict]:
    rows = s.execute(select(model.id, model.name, model.city, func.ST_X(model.geom), func.ST_Y(model.geom))
                     .order_by(model.id)).all()
    return [{"id": r[0], "name": r[1], "city": r[2], "lon": r[3], "lat": r[4]} for r in rows]


def _density(s, scope, by, f, hex_size_m=10_000, with_revenue=True):
    """Density FeatureCollection; hex grids through the app's aggregate cache."""
    from geo_crm.api.spatial import aggregate_cache
    from geo_crm.spatial.cache import filter_key
    if by != "hex":
        return dens.density(s, scope, by, f, hex_size_m=hex_size_m, with_revenue=with_revenue)
    key = ("density-fc", scope.cache_key, scope.role, filter_key(f), by, hex_size_m, with_revenue)
    return aggregate_cache().get_or_compute(key, lambda: dens.density(s, scope, by, f, hex_size_m=hex_size_m,
                                                                      with_revenue=with_revenue))


def _base(s, regions_fc):
    cfg = current_app.config["GEO_CRM"]
    return mp.base_map(cfg.map_center, 6, tile_url=cfg.tile_url, tile_attribution=cfg.tile_attribution,
                       outline=None if cfg.tile_url else regions_fc, min_zoom=3, max_zoom=18)


def _choices(s, scope):
    industries = s.execute(select(Dictionary.code, Dictionary.label).where(Dictionary.kind == "industry")
                           .order_by(Dictionary.label)).all() if hasattr(Dictionary, "code") else []
    owners = s.execute(select(User.id, User.full_name, User.username)
                       .where(User.role.in_(("account_manager", "sales_manager")), User.is_active)
                       .order_by(User.full_name)).all()
    regions = s.execute(select(Region.id, Region.name).order_by(Region.name)).all()
    territories = s.execute(select(Territory.id, Territory.name).where(scope.territory_filter())
                            .order_by(Territory.name)).all()
    return {"levels": CUSTOMER_LEVELS, "statuses": CUSTOMER_STATUSES, "industries": industries,
            "owners": owners, "regions": regions, "territories": territories}


@bp.get("/map")
@require("map.read")
def customer_map():
    scope, s = current_scope(), read_db()
    f, raw, error = _filter_from_args()
    regions_fc = _regions_fc(s)
    m = _base(s, regions_fc)
    tile_filters = {k: (",".join(v) if isinstance(v, list) else v) for k, v in raw.items()} if f else {}
    mp.customer_tiles_layer(filters=tile_filters, name=_("Customers"), level_colors=LEVEL_COLORS,
                            fields=(("level", _("Level")), ("status", _("Status")), ("city", _("City"))),
                            link_text=_("Open customer"), aggregate_label=_("customers"),
                            zoom_hint=_("Zoom in to see them individually."), renderer="svg").add_to(m)
    if scope.can("branch.read"):
        mp.branches_layer(_sites(s, Branch), name=_("Branches"), record_url="/branches/{id}").add_to(m)
    if scope.can("partner.read"):
        mp.partners_layer(_sites(s, Partner), name=_("Partners"), record_url="/partners/{id}",
                          show=False).add_to(m)
    mp.regions_layer(regions_fc, name=_("Regions"), show=False, fill_opacity=0.05).add_to(m)
    terr = tsvc.list_features(s, scope)
    for t in terr["features"]:
        t["properties"].pop("users", None)
    if terr["features"]:
        mp.regions_layer(terr, name=_("Territories"), show=False, fields=(("customers", _("Customers")),
                                                                          ("area_km2", "km²"))).add_to(m)
    if scope.can("branch.read"):
        sa = service_areas.service_areas(s, scope)
        if sa["features"]:
            mp.regions_layer(sa, name=_("Service areas"), show=False, fill_opacity=0.1,
                             fields=(("area_km2", "km²"),)).add_to(m)
    hexes = _density(s, scope, "hex", f, 10_000, with_revenue=False)
    pts = [[json_centroid(x["geometry"])[1], json_centroid(x["geometry"])[0], x["properties"]["count"]]
           for x in hexes["features"]]
    if pts:
        mp.heat_layer(pts, name=_("Heat map"), show=False).add_to(m)
    reg = _density(s, scope, "region", f, with_revenue=False)
    if any(x["properties"]["count"] for x in reg["features"]):
        mp.choropleth(reg, "per_10k_inhabitants", scheme="quantiles", k=5, name=_("Density choropleth"),
                      title=_("Customers per 10,000 inhabitants"), show=False,
                      fields=(("count", _("Customers")), ("per_10k_inhabitants", _("per 10k")))).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    mp.draw_control(shapes=("polygon", "rectangle", "circle")).add_to(m)
    parts = mp.render_parts(m, nonce=csp_nonce())
    return render_template("maps/map.html", parts=parts, raw=raw, error=error, choices=_choices(s, scope),
                           can_export=scope.can("customer.export"), can_territory=scope.can("territory.write"),
                           filter_query=urlencode(tile_filters))


def json_centroid(geom: dict) -> tuple[float, float]:
    ring = geom["coordinates"][0] if geom["type"] == "Polygon" else geom["coordinates"][0][0]
    xs, ys = [p[0] for p in ring[:-1]], [p[1] for p in ring[:-1]]
    return sum(xs) / len(xs), sum(ys) / len(ys)


@bp.get("/map/density")
@require("map.read")
def density():
    scope, s = current_scope(), read_db()
    f, raw, error = _filter_from_args()
    metric = request.args.get("metric", "count")
    metric = metric if metric in METRICS else "count"
    by = request.args.get("by", "region")
    by = by if by in dens.BY else "region"
    scheme = request.args.get("scheme", "quantiles")
    scheme = scheme if scheme in SCHEMES else "quantiles"
    try:
        k = max(2, min(9, int(request.args.get("k", 5))))
        hex_size = max(1000.0, min(100_000.0, float(request.args.get("hex_size_m", 10_000))))
    except ValueError:
        k, hex_size = 5, 10_000.0
    show_hot = request.args.get("hotspots") == "1"
    regions_fc = _regions_fc(s)
    m = _base(s, regions_fc)
    fc = _density(s, scope, by, f, hex_size, with_revenue=(metric == "revenue"))
    legend = None
    values = [x["properties"][metric] for x in fc["features"] if x["properties"][metric] is not None]
    if values:
        k_eff = max(1, min(k, len(set(values))))
        res = mp.choropleth(fc, metric, scheme=scheme, k=k_eff, name=_(METRICS[metric]), title=_(METRICS[metric]),
                            fields=(("count", _("Customers")), ("per_km2", _("per km²")), ("revenue", _("Revenue")),
                                    ("per_10k_inhabitants", _("per 10k inhabitants")),
                                    ("population", _("Population"))))
        res.add_to(m)
        legend = {"breaks": res.breaks, "counts": res.counts, "scheme": scheme, "k": res.k}
    if show_hot:
        hot = patterns.hot_spots(s, scope, f, max(hex_size, 5000))
        feats = [x for x in hot["features"] if x["properties"]["class"] != "ns"]
        for x in feats:
            x["properties"]["color"] = HOT_COLORS[x["properties"]["class"]]
        if feats:
            mp.regions_layer({"type": "FeatureCollection", "features": feats}, name=_("Hot spots (Gi*)"),
                             fill_opacity=0.6, fields=(("class", _("Class")), ("z", "z"), ("p", "p"),
                                                       ("count", _("Customers")))).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    parts = mp.render_parts(m, nonce=csp_nonce())
    api_query = urlencode({**{k2: (",".join(v) if isinstance(v, list) else v) for k2, v in raw.items()},
                           "by": by, **({"hex_size_m": hex_size} if by == "hex" else {})})
    return render_template("maps/density.html", parts=parts, raw=raw, error=error, choices=_choices(s, scope),
                           metric=metric, metrics=METRICS, by=by, scheme=scheme, schemes=SCHEMES, k=k,
                           hex_size=int(hex_size), show_hot=show_hot, legend=legend, api_query=api_query,
                           n_areas=len(fc["features"]), total=fc["properties"]["total_count"])


@bp.get("/map/territories")
@require("territory.read")
def territories():
    scope, s = current_scope(), read_db()
    regions_fc = _regions_fc(s)
    m = _base(s, regions_fc)
    terr = tsvc.list_features(s, scope)
    for t in terr["features"]:
        t["properties"].pop("users", None)
    if terr["features"]:
        mp.regions_layer(terr, name=_("Territories"), fields=(("customers", _("Customers")), ("area_km2", "km²"),
                                                              ("id", "id"))).add_to(m)
    mp.regions_layer(regions_fc, name=_("Regions"), show=False, fill_opacity=0.05,
                     fields=(("id", "id"), ("code", _("Code")))).add_to(m)
    og = reports.overlaps_and_gaps(s, scope)
    if og["overlaps"]["features"]:
        mp.regions_layer(og["overlaps"], name=_("Overlaps"), default_color="#e31a1c", fill_opacity=0.5).add_to(m)
    if og["gap"]["geometry"] and og["gap_km2"] > 0.01:
        mp.regions_layer({"type": "FeatureCollection", "features": [og["gap"]]}, name=_("Gaps"),
                         default_color="#000000", fill_opacity=0.3).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    can_write = scope.can("territory.write")
    if can_write:
        mp.draw_control(shapes=("polygon", "rectangle", "polyline"), event_name="geocrm:draw").add_to(m)
    parts = mp.render_parts(m, nonce=csp_nonce())
    bal = reports.balance(s, scope)
    users = s.execute(select(User.id, User.username, User.role).where(
        User.role.in_(("sales_manager", "regional_manager")), User.is_active).order_by(User.username)).all()
    return render_template("maps/territories.html", parts=parts, balance=bal, og=og, terr=terr,
                           regions=[(x["id"], x["properties"]["name"]) for x in regions_fc["features"]],
                           can_write=can_write, can_realign=can_write and scope.sees_everything, users=users)
