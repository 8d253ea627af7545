"""OGC API – Features, Part 1 Core (+ Part 3 CQL2-text filter) at /ogc.

Collections: customers, branches, partners, regions, territories (EPSG:4326, CRS84
axis order lon/lat). Landing page, conformance and the OpenAPI document are public;
collections and features need the same bearer token or session cookie as the API,
and every query goes through the caller's Scope: a feature the caller may not see
answers 404, and counts (numberMatched) only count visible features. Encodings: JSON
/ GeoJSON, and HTML (`?f=html` or a browser's Accept header).
"""
from __future__ import annotations

import json
import math
from datetime import datetime

from flask import Blueprint, Response, abort, render_template, request, url_for
from sqlalchemy import and_, func, literal_column, or_, select

from geo_crm.customers.filters import FilterError, parse_bbox
from geo_crm.http import current_scope, read_db
from geo_crm.models import Branch, Customer, Partner, Region, Territory

bp = Blueprint("ogc", __name__, url_prefix="/ogc")

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
DEFAULT_LIMIT, MAX_LIMIT = 100, 10_000


class Collection:
    def __init__(self, cid, title, model, props, permission, temporal=True, label="name"):
        self.id, self.title, self.model, self.props, self.permission = cid, title, model, props, permission
        self.temporal, self.label = temporal, label

    def visible(self, scope):
        return scope.can(self.permission)

    def predicate(self, scope):
        if self.model is Customer:
            return scope.customer_filter()
        if self.model is Territory:
            return scope.territory_filter()
        return literal_column("true")

    def properties(self, scope) -> list[str]:
        if self.model is Customer and scope.customer_fields is not None:
            return [p for p in self.props if p in scope.customer_fields]
        return list(self.props)


COLLECTIONS = {c.id: c for c in [
    Collection("customers", "Customers", Customer,
               ["code", "name", "kind", "industry", "level", "status", "address", "postcode", "city", "country",
                "phone", "email", "owner_id", "region_id", "service_branch_id", "geocode_quality", "updated_at"],
               "customer.read"),
    Collection("branches", "Branches", Branch,
               ["code", "name", "address", "postcode", "city", "phone", "is_depot", "updated_at"], "branch.read"),
    Collection("partners", "Partners", Partner,
               ["code", "name", "partner_type", "address", "postcode", "city", "phone", "commission_pct",
                "updated_at"], "partner.read"),
    Collection("regions", "Administrative regions", Region,
               ["code", "name", "name_local", "level", "parent_id", "population", "area_km2"], "map.read",
               temporal=False),
    Collection("territories", "Sales territories", Territory,
               ["name", "description", "color", "source", "area_km2", "updated_at"], "territory.read"),
]}


def _wants_html() -> bool:
    f = request.args.get("f")
    if f:
        return f == "html"
    best = request.accept_mimetypes.best_match(["application/json", "application/geo+json", "text/html"])
    return best == "text/html"


def _url(endpoint, **kw):
    return url_for(endpoint, _external=True, **kw)


def _json(obj, mime="application/json", status=200):
    return Response(json.dumps(obj, default=_default, separators=(",", ":")), status=status, mimetype=mime)


def _default(v):
    if isinstance(v, datetime):
        return v.isoformat()
    if hasattr(v, "as_tuple"):
        return float(v)
    return str(v)


def _error(status, code, message):
    return _json({"code": code, "description": message}, status=status)


def _need_auth():
    if current_scope() is None:
        abort(401)
    return current_scope()


def _collection(cid):
    scope = _need_auth()
    c = COLLECTIONS.get(cid)
    if c is None or not c.visible(scope):
        abort(404)
    return c, scope


def _html(template, **ctx):
    return render_template(f"data/ogc_{template}.html", **ctx)


@bp.get("/")
def landing():
    doc = {"title": "geo-crm OGC API – Features",
           "description": "Customers, branches, partners, regions and territories of the CRM",
           "links": [
               {"href": _url("ogc.landing"), "rel": "self", "type": "application/json", "title": "this document"},
               {"href": _url("ogc.landing", f="html"), "rel": "alternate", "type": "text/html", "title": "as HTML"},
               {"href": _url("ogc.openapi"), "rel": "service-desc",
                "type": "application/vnd.oai.openapi+json;version=3.0", "title": "the API definition"},
               {"href": _url("ogc.conformance"), "rel": "conformance", "type": "application/json",
                "title": "conformance classes"},
               {"href": _url("ogc.collections"), "rel": "data", "type": "application/json",
                "title": "collections"}]}
    return _html("landing", doc=doc) if _wants_html() else _json(doc)


@bp.get("/conformance")
def conformance():
    doc = {"conformsTo": CONFORMANCE}
    return _html("conformance", doc=doc) if _wants_html() else _json(doc)


def _extent(c: Collection, scope):
    geom = c.model.geom
    box = read_db().execute(select(func.ST_XMin(func.ST_Extent(geom)), func.ST_YMin(func.ST_Extent(geom)),
                                   func.ST_XMax(func.ST_Extent(geom)), func.ST_YMax(func.ST_Extent(geom)))
                            .where(c.predicate(scope))).first()
    bbox = [list(box)] if box and box[0] is not None else [[-180, -90, 180, 90]]
    ext = {"spatial": {"bbox": bbox, "crs": CRS84}}
    if c.temporal:
        ext["temporal"] = {"interval": [[None, None]], "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    return ext


def _collection_doc(c: Collection, scope):
    return {"id": c.id, "title": c.title, "itemType": "feature", "crs": [CRS84], "extent": _extent(c, scope),
            "links": [
                {"href": _url("ogc.collection", cid=c.id), "rel": "self", "type": "application/json"},
                {"href": _url("ogc.items", cid=c.id), "rel": "items", "type": "application/geo+json",
                 "title": c.title},
                {"href": _url("ogc.items", cid=c.id, f="html"), "rel": "items", "type": "text/html"},
                {"href": _url("ogc.queryables", cid=c.id), "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                 "type": "application/schema+json"}]}


@bp.get("/collections")
def collections():
    scope = _need_auth()
    docs = [_collection_doc(c, scope) for c in COLLECTIONS.values() if c.visible(scope)]
    doc = {"collections": docs, "links": [{"href": _url("ogc.collections"), "rel": "self",
                                           "type": "application/json"}]}
    return _html("collections", doc=doc) if _wants_html() else _json(doc)


@bp.get("/collections/<cid>")
def collection(cid):
    c, scope = _collection(cid)
    doc = _collection_doc(c, scope)
    return _html("collections", doc={"collections": [doc], "links": []}) if _wants_html() else _json(doc)


@bp.get("/collections/<cid>/queryables")
def queryables(cid):
    c, scope = _collection(cid)
    props = {p: {"type": _json_type(c.model, p)} for p in c.properties(scope)}
    props["geometry"] = {"$ref": "https://geojson.org/schema/Geometry.json"}
    return _json({"$schema": "https://json-schema.org/draft/2019-09/schema",
                  "$id": _url("ogc.queryables", cid=cid), "type": "object", "title": c.title,
                  "properties": props}, "application/schema+json")


def _json_type(model, prop):
    col = getattr(model, prop).property.columns[0]
    try:
        py = col.type.python_type
    except NotImplementedError:
        return "string"
    return {int: "integer", float: "number", bool: "boolean"}.get(py, "number" if "Numeric" in type(col.type).__name__ else "string")


def _parse_datetime(value: str, c: Collection):
    def one(s):
        if s in ("", ".."):
            return None
        try:
            return datetime.fromisoformat(s.replace("Z", "+00:00"))
        except ValueError:
            raise FilterError("datetime", "expected RFC 3339 date-time or interval")
    col = c.model.updated_at
    if "/" in value:
        a, b = value.split("/", 1)
        lo, hi = one(a), one(b)
        return and_(*([col >= lo] if lo else []), *([col <= hi] if hi else []))
    t = one(value)
    return col == t


def _cql_filter(text_: str, c: Collection, scope):
    from pygeofilter.backends.sqlalchemy import to_filter
    from pygeofilter.parsers.cql2_text import parse
    try:
        ast = parse(text_)
    except Exception:
        raise FilterError("filter", "invalid CQL2 text")
    allowed = c.properties(scope)
    from pygeofilter import ast as cql_ast

    def names(node):
        if isinstance(node, cql_ast.Attribute):
            yield node.name
        for sub in (node.get_sub_nodes() if isinstance(node, cql_ast.Node) else []) or []:
            if isinstance(sub, list):
                for x in sub:
                    yield from names(x)
            else:
                yield from names(sub)
    for n in names(ast):
        if n not in allowed and n != "geometry":
            raise FilterError("filter", f"unknown or not queryable property: {n}")
    mapping = {p: getattr(c.model, p) for p in allowed}
    mapping["geometry"] = c.model.geom
    try:
        return to_filter(ast, mapping)
    except (KeyError, AttributeError) as e:
        raise FilterError("filter", f"unknown or not queryable property: {e}")
    except Exception:
        raise FilterError("filter", "unsupported CQL2 expression")


ALLOWED_ITEM_PARAMS = {"limit", "offset", "bbox", "bbox-crs", "datetime", "filter", "filter-lang", "filter-crs", "f"}


@bp.get("/collections/<cid>/items")
def items(cid):
    c, scope = _collection(cid)
    unknown = set(request.args) - ALLOWED_ITEM_PARAMS
    props = c.properties(scope)
    try:
        if unknown:
            raise FilterError(sorted(unknown)[0], "unknown query parameter")
        limit = int(request.args.get("limit", DEFAULT_LIMIT))
        offset = int(request.args.get("offset", 0))
        if limit < 1 or offset < 0:
            raise FilterError("limit", "limit must be ≥ 1 and offset ≥ 0")
        limit = min(limit, MAX_LIMIT)
        conds = [c.predicate(scope)]
        if request.args.get("bbox"):
            if request.args.get("bbox-crs", CRS84) not in (CRS84, "http://www.opengis.net/def/crs/EPSG/0/4326"):
                raise FilterError("bbox-crs", "only CRS84 is supported")
            parts = request.args["bbox"].split(",")
            if len(parts) == 6:
                parts = [parts[0], parts[1], parts[3], parts[4]]
            minx, miny, maxx, maxy = parse_bbox(",".join(parts))
            env = func.ST_MakeEnvelope
            if minx <= maxx:
                conds.append(func.ST_Intersects(c.model.geom, env(minx, miny, maxx, maxy, 4326)))
            else:
                conds.append(or_(func.ST_Intersects(c.model.geom, env(minx, miny, 180, maxy, 4326)),
                                 func.ST_Intersects(c.model.geom, env(-180, miny, maxx, maxy, 4326))))
        if request.args.get("datetime"):
            if not c.temporal:
                raise FilterError("datetime", "this collection has no temporal property")
            conds.append(_parse_datetime(request.args["datetime"], c))
        if request.args.get("filter"):
            if request.args.get("filter-lang", "cql2-text") != "cql2-text":
                raise FilterError("filter-lang", "only cql2-text is supported")
            conds.append(_cql_filter(request.args["filter"], c, scope))
    except (FilterError, ValueError) as e:
        return _error(400, "InvalidParameterValue", str(e))
    s = read_db()
    where = and_(*conds)
    matched = s.execute(select(func.count()).select_from(c.model).where(where)).scalar()
    cols = [getattr(c.model, p).label(p) for p in props]
    rows = s.execute(select(c.model.id, func.ST_AsGeoJSON(c.model.geom, 7).label("g"), *cols)
                     .where(where).order_by(c.model.id).limit(limit).offset(offset)).all()
    feats = [{"type": "Feature", "id": r.id, "geometry": json.loads(r.g) if r.g else None,
              "properties": {p: getattr(r, p) for p in props}} for r in rows]
    base = {k: v for k, v in request.args.items() if k not in ("offset", "f")}
    links = [{"href": _url("ogc.items", cid=cid, **base, offset=offset), "rel": "self",
              "type": "application/geo+json"},
             {"href": _url("ogc.items", cid=cid, **base, offset=offset, f="html"), "rel": "alternate",
              "type": "text/html"},
             {"href": _url("ogc.collection", cid=cid), "rel": "collection", "type": "application/json"}]
    if offset + len(rows) < matched:
        links.append({"href": _url("ogc.items", cid=cid, **base, offset=offset + limit), "rel": "next",
                      "type": "application/geo+json"})
    if offset > 0:
        links.append({"href": _url("ogc.items", cid=cid, **base, offset=max(0, offset - limit)), "rel": "prev",
                      "type": "application/geo+json"})
    doc = {"type": "FeatureCollection", "features": feats, "numberMatched": matched, "numberReturned": len(feats),
           "timeStamp": datetime.utcnow().replace(microsecond=0).isoformat() + "Z", "links": links}
    if _wants_html():
        return _html("items", doc=doc, collection=c, props=props, pages=math.ceil(matched / limit) if limit else 0)
    return _json(doc, "application/geo+json")


@bp.get("/collections/<cid>/items/<fid>")
def item(cid, fid):
    c, scope = _collection(cid)
    if not fid.isdigit():
        abort(404)
    props = c.properties(scope)
    cols = [getattr(c.model, p).label(p) for p in props]
    r = read_db().execute(select(c.model.id, func.ST_AsGeoJSON(c.model.geom, 7).label("g"), *cols)
                          .where(c.model.id == int(fid), c.predicate(scope))).first()
    if r is None:
        abort(404)
    doc = {"type": "Feature", "id": r.id, "geometry": json.loads(r.g) if r.g else None,
           "properties": {p: getattr(r, p) for p in props},
           "links": [{"href": _url("ogc.item", cid=cid, fid=fid), "rel": "self", "type": "application/geo+json"},
                     {"href": _url("ogc.collection", cid=cid), "rel": "collection", "type": "application/json"}]}
    if _wants_html():
        return _html("items", doc={"features": [doc], "links": doc["links"], "numberMatched": 1,
                                   "numberReturned": 1}, collection=c, props=props, pages=1)
    return _json(doc, "application/geo+json")


@bp.get("/api")
def openapi():
    from geo_crm.ogc.openapi import document
    return _json(document(_url("ogc.landing").rstrip("/"), list(COLLECTIONS)),
                 "application/vnd.oai.openapi+json;version=3.0")
