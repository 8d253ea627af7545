"""The OpenAPI 3.0 document of the OGC API – Features endpoints."""
from __future__ import annotations


def _param(name, where, schema, required=False, desc="", style=None, explode=None):
    p = {"name": name, "in": where, "required": required, "schema": schema, "description": desc}
    if style:
        p["style"] = style
    if explode is not None:
        p["explode"] = explode
    return p


def document(server: str, collections: list[str]) -> dict:
    fc = {"description": "features", "content": {"application/geo+json": {"schema": {"type": "object"}},
                                                  "text/html": {"schema": {"type": "string"}}}}
    js = {"description": "ok", "content": {"application/json": {"schema": {"type": "object"}},
                                           "text/html": {"schema": {"type": "string"}}}}
    err = {"description": "error", "content": {"application/json": {"schema": {"type": "object"}}}}
    f = _param("f", "query", {"type": "string", "enum": ["json", "html"]}, desc="encoding")
    cid = _param("collectionId", "path", {"type": "string", "enum": collections}, True)
    items_params = [
        cid, f,
        _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100}, style="form",
               explode=False),
        _param("offset", "query", {"type": "integer", "minimum": 0, "default": 0}),
        _param("bbox", "query", {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
               style="form", explode=False),
        _param("datetime", "query", {"type": "string"}, style="form", explode=False),
        _param("filter", "query", {"type": "string"}, desc="CQL2 text"),
        _param("filter-lang", "query", {"type": "string", "enum": ["cql2-text"]}),
    ]
    sec = [{"bearer": []}, {"cookie": []}]
    return {
        "openapi": "3.0.3",
        "info": {"title": "geo-crm OGC API – Features", "version": "1.0.0"},
        "servers": [{"url": server}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                           "cookie": {"type": "apiKey", "in": "cookie", "name": "session"}}},
        "paths": {
            "/": {"get": {"summary": "Landing page", "operationId": "getLandingPage", "parameters": [f],
                          "responses": {"200": js}}},
            "/conformance": {"get": {"summary": "Conformance classes", "operationId": "getConformance",
                                     "parameters": [f], "responses": {"200": js}}},
            "/api": {"get": {"summary": "This document", "operationId": "getApi",
                             "responses": {"200": {"description": "OpenAPI 3.0"}}}},
            "/collections": {"get": {"summary": "Feature collections", "operationId": "getCollections",
                                     "parameters": [f], "security": sec, "responses": {"200": js, "401": err}}},
            "/collections/{collectionId}": {"get": {
                "summary": "A collection", "operationId": "describeCollection", "parameters": [cid, f],
                "security": sec, "responses": {"200": js, "401": err, "404": err}}},
            "/collections/{collectionId}/queryables": {"get": {
                "summary": "Queryable properties", "operationId": "getQueryables", "parameters": [cid],
                "security": sec, "responses": {"200": {"description": "JSON schema"}, "404": err}}},
            "/collections/{collectionId}/items": {"get": {
                "summary": "Features", "operationId": "getFeatures", "parameters": items_params, "security": sec,
                "responses": {"200": fc, "400": err, "401": err, "404": err}}},
            "/collections/{collectionId}/items/{featureId}": {"get": {
                "summary": "A feature", "operationId": "getFeature",
                "parameters": [cid, _param("featureId", "path", {"type": "string"}, True), f], "security": sec,
                "responses": {"200": fc, "401": err, "404": err}}},
        },
    }
