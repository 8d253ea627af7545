"""A thin layer between Flask and the domain: one decorator declares an operation's
path, method, permission and pydantic models; it validates input, checks the caller,
and records the operation so the OpenAPI document is generated from the code.

Handlers receive validated `query` / `body` models and return a Flask response or a
plain dict/list (sent as JSON).
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from flask import Blueprint, Response, abort, jsonify, request
from pydantic import BaseModel, ConfigDict, ValidationError

from geo_crm.cursors import decode_cursor, encode_cursor  # noqa: F401  (re-exported for the API modules)
from geo_crm.errors import Forbidden, InvalidInput, InvalidTransition, check_version  # noqa: F401
from geo_crm.http import current_scope

bp = Blueprint("api", __name__, url_prefix="/api/v1")


class StrictModel(BaseModel):
    """Unknown fields are rejected."""
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, fields: list[dict] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or []


def validation_error(field: str, problem: str, status: int = 422) -> ApiError:
    return ApiError(status, "validation", f"{field}: {problem}", [{"field": field, "problem": problem}])


@bp.after_request
def _no_content_type_without_content(resp: Response) -> Response:
    """204/304 carry no body, so no Content-Type (Flask would add text/html)."""
    if resp.status_code in (204, 304):
        resp.headers.pop("Content-Type", None)
    return resp


@bp.errorhandler(ApiError)
def _api_error(e: ApiError):
    body = {"error": {"code": e.code, "message": e.message}}
    if e.fields:
        body["error"]["fields"] = e.fields
    return jsonify(body), e.status


@bp.errorhandler(InvalidInput)
def _invalid_input(e: InvalidInput):
    """A domain rule refused a value: 422 naming the field."""
    return _api_error(validation_error(e.field, e.problem))


@bp.errorhandler(InvalidTransition)
def _invalid_transition(e: InvalidTransition):
    """The record's state does not allow the step: 409."""
    return _api_error(ApiError(409, "invalid_transition", str(e)))


def _pydantic_fields(err: ValidationError) -> list[dict]:
    out = []
    for d in err.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in d["loc"]) or "body"
        msg = d["msg"]
        if d["type"] == "extra_forbidden":
            msg = "unknown field"
        out.append({"field": loc, "problem": msg})
    return out


@dataclass
class Operation:
    rule: str
    method: str
    summary: str
    tags: list[str]
    permission: str | None
    query: type[BaseModel] | None
    body: type[BaseModel] | None
    response: type[BaseModel] | None
    auth: bool
    responses: dict[int, str] = field(default_factory=dict)
    content_types: list[str] = field(default_factory=lambda: ["application/json"])
    description: str = ""


REGISTRY: list[Operation] = []


def _query_dict(model: type[BaseModel]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in request.args:
        values = request.args.getlist(key)
        ann = model.model_fields.get(key)
        is_list = ann is not None and "list" in str(ann.annotation).lower()
        out[key] = values if is_list else values[-1]
    return out


def operation(rule: str, method: str = "GET", *, summary: str, tags: list[str], permission: str | None = None,
              query: type[BaseModel] | None = None, body: type[BaseModel] | None = None,
              response: type[BaseModel] | None = None, auth: bool = True,
              responses: dict[int, str] | None = None, content_types: list[str] | None = None,
              description: str = "") -> Callable:
    """Register an API operation. See the module docstring."""
    def deco(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def view(**path):
            if auth and current_scope() is None:
                abort(401)
            if permission and not current_scope().can(permission):
                raise Forbidden(permission)
            kwargs: dict[str, Any] = dict(path)
            if query is not None:
                try:
                    kwargs["query"] = query.model_validate(_query_dict(query))
                except ValidationError as e:
                    raise ApiError(422, "validation", "invalid query parameters", _pydantic_fields(e))
            elif request.args and method == "GET" and not getattr(fn, "accepts_any_query", False):
                unknown = sorted(request.args)
                raise ApiError(422, "validation", "unknown query parameters",
                               [{"field": k, "problem": "unknown parameter"} for k in unknown])
            if body is not None:
                data = request.get_json(silent=True)
                if data is None:
                    raise ApiError(400, "invalid_json", "the request body must be a JSON object")
                try:
                    kwargs["body"] = body.model_validate(data)
                except ValidationError as e:
                    raise ApiError(422, "validation", "invalid request body", _pydantic_fields(e))
            result = fn(**kwargs)
            if isinstance(result, (dict, list)):
                return jsonify(result)
            return result

        endpoint = f"{fn.__module__.rsplit('.', 1)[-1]}_{fn.__name__}"
        bp.add_url_rule(rule, endpoint, view, methods=[method])
        REGISTRY.append(Operation(rule, method, summary, tags, permission, query, body, response, auth,
                                  responses or {}, content_types or ["application/json"],
                                  description or (fn.__doc__ or "").strip()))
        return view
    return deco


# -- optimistic locking -------------------------------------------------------------
def if_match_version() -> int | None:
    """The version from an `If-Match` header (`"3"`, `W/"3"` or `3`), or None."""
    raw = request.headers.get("If-Match")
    if not raw:
        return None
    raw = raw.strip()
    if raw.startswith("W/"):
        raw = raw[2:]
    raw = raw.strip('"')
    if not raw.isdigit():
        raise ApiError(400, "bad_if_match", "If-Match must be the record's version, e.g. \"3\"")
    return int(raw)


def with_etag(resp: Response, version: int) -> Response:
    resp.headers["ETag"] = f'"{version}"'
    return resp


def geojson_response(obj: dict, status: int = 200) -> Response:
    resp = Response(json.dumps(obj, separators=(",", ":"), default=str), status=status,
                    mimetype="application/geo+json")
    return resp
