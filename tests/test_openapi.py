"""The OpenAPI document is valid OpenAPI 3.1 and matches the registered endpoints."""
from __future__ import annotations

import re

from openapi_spec_validator import validate


def test_openapi_document_is_valid(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    validate(doc)  # raises with the offending path when invalid


def test_every_api_route_is_documented_and_vice_versa(app, client):
    doc = client.get("/api/v1/openapi.json").get_json()
    documented = {(path, m.upper()) for path, ops in doc["paths"].items() for m in ops}
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint == "api.docs":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for m in rule.methods - {"HEAD", "OPTIONS"}:
            served.add((path, m))
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"


def test_docs_page_lists_operations(client):
    html = client.get("/api/v1/docs").get_data(as_text=True)
    assert "/api/v1/customers" in html and "/api/v1/auth/token" in html
