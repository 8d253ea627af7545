"""The OpenAPI 3.1 document, generated from the registered operations."""
from __future__ import annotations

import re

from flask import render_template

from geo_crm import __version__
from geo_crm.api.framework import REGISTRY, bp, operation

_PATH_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def _path(rule: str) -> tuple[str, list[dict]]:
    params = []
    for conv, name in _PATH_PARAM.findall(rule):
        schema = {"type": "integer"} if conv == "int" else {"type": "string"}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return "/api/v1" + _PATH_PARAM.sub(lambda m: "{" + m.group(2) + "}", rule), params


def _ref(model, components: dict) -> dict:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


NO_CONTENT = {204, 304}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _generic_responses(op) -> dict[int, str]:
    """Statuses every operation of a kind can answer, whatever its handler does: the
    framework and the app's error handlers produce them (see geo_crm/app.py)."""
    out: dict[int, str] = {}
    if op.auth:
        out[401] = "authentication required"
        # the 404-not-403 policy: a record (in the path, the query or the body) that does
        # not exist or that the caller may not see
        out[404] = "not found, or not visible to you"
    if op.permission:
        out[403] = "not permitted"
    if op.method in WRITES and op.auth:
        # handlers that check the verb per record: the caller sees it but may not do this
        out[403] = "not permitted (you may see the record but not do this to it)"
    if op.query or op.body:
        out[422] = "validation error"
    if op.body:
        out[400] = "malformed request"
    if op.method in WRITES and op.auth:
        out[400] = "malformed request, a bad If-Match header, or (cookie callers) a missing CSRF token"
        out[409] = "conflicts with the record's current state"
        out[422] = "validation error, or the change breaks a business rule"
    if op.method in ("PUT", "PATCH", "DELETE") and op.auth:
        out[412] = "If-Match names a stale version"
    if op.method == "DELETE":
        out[204] = "deleted"
    out[503] = "the database is unavailable; retry shortly"
    return out


def build_document() -> dict:
    paths: dict = {}
    components: dict = {}
    error = {"type": "object", "properties": {"error": {"type": "object", "properties": {
        "code": {"type": "string"}, "message": {"type": "string"},
        "fields": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string"}, "problem": {"type": "string"}}}}}, "required": ["code", "message"]}},
        "required": ["error"]}
    components["Error"] = error
    for op in REGISTRY:
        path, params = _path(op.rule)
        if op.query is not None:
            qs = op.query.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in qs.pop("$defs", {}).items():
                components[name] = sub
            required = set(qs.get("required", []))
            for name, prop in qs.get("properties", {}).items():
                p = {"name": name, "in": "query", "required": name in required, "schema": prop}
                if "description" in prop:
                    p["description"] = prop["description"]
                if prop.get("type") == "array" or "array" in str(prop.get("anyOf", "")):
                    p["explode"] = True
                params.append(p)
        entry: dict = {
            "summary": op.summary, "tags": op.tags,
            "operationId": f"{op.method.lower()}_{path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}",
            "parameters": params,
            "responses": {},
        }
        if op.description:
            entry["description"] = op.description
        if op.body is not None:
            entry["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(op.body, components)}}}
        ok = {"description": "OK", "content": {ct: {"schema": _ref(op.response, components) if op.response and ct.endswith("json") else {}}
                                              for ct in op.content_types}}
        status_ok = 201 if op.method == "POST" and 201 in op.responses else 200
        entry["responses"][str(status_ok)] = ok
        err = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        for code, desc in {**_generic_responses(op), **{k: v for k, v in op.responses.items() if k != status_ok}}.items():
            entry["responses"][str(code)] = {"description": desc} if code in NO_CONTENT else {"description": desc, **err}
        if op.auth:
            entry["security"] = [{"bearer": []}, {"cookie": []}]
        paths.setdefault(path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "geo-crm API", "version": __version__,
                 "description": "PostGIS-backed CRM. Geometry is GeoJSON (RFC 7946), EPSG:4326; distances in metres."},
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": components, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "cookie": {"type": "apiKey", "in": "cookie", "name": "session"}}},
    }


@operation("/openapi.json", summary="This OpenAPI document", tags=["meta"], auth=False)
def openapi_json():
    return build_document()


@bp.get("/docs")
def docs():
    """Human-readable API reference (server-rendered, no external scripts)."""
    return render_template("api_docs.html", doc=build_document())
