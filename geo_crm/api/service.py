"""Service requests API: CRUD, assign, start, resolve, rate."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from flask import request
from pydantic import BaseModel, Field, ValidationError

from geo_crm.api.framework import ApiError, StrictModel, decode_cursor, encode_cursor, if_match_version, operation
from geo_crm.api.sales import domain_errors, iso, respond
from geo_crm.http import current_scope, db
from geo_crm.models import ServiceRecord
from geo_crm.servicedesk import service as desk

TAGS = ["service"]
ERR = {404: "not found or not visible", 409: "not allowed in the current state", 412: "version mismatch (If-Match)",
       422: "invalid input"}
Status = Literal["new", "assigned", "in_progress", "resolved", "archived"]


class ServiceQuery(StrictModel):
    status: Status | None = None
    type: str | None = Field(None, max_length=32)
    assignee_id: int | None = Field(None, ge=1)
    customer_id: int | None = Field(None, ge=1)
    open: bool = Field(False, description="only records not archived")
    limit: int = Field(50, ge=1, le=500)
    cursor: str | None = None


class ServiceCreate(StrictModel):
    type: str = Field(min_length=1, max_length=32, description="dictionary kind 'service_type'")
    customer_id: int | None = Field(None, ge=1, description="required for staff; a customer files for themselves")
    subject: str = Field("", max_length=200)
    request_text: str = Field(min_length=1, max_length=10000)


class ServiceUpdate(StrictModel):
    type: str | None = Field(None, min_length=1, max_length=32)
    subject: str | None = Field(None, max_length=200)
    request_text: str | None = Field(None, min_length=1, max_length=10000)
    handling_notes: str | None = Field(None, max_length=20000)


class AssignBody(StrictModel):
    assignee_id: int = Field(ge=1, description="a service agent")


class StartBody(StrictModel):
    notes: str | None = Field(None, max_length=5000)


class ResolveBody(StrictModel):
    result: str = Field(min_length=1, max_length=10000)
    notes: str | None = Field(None, max_length=5000)


class RateBody(StrictModel):
    rating: int = Field(ge=1, le=5, description="1 (poor) … 5 (excellent); below 3 reopens the request")
    comment: str = Field("", max_length=2000)


class ServiceOut(BaseModel):
    id: int
    type: str
    customer_id: int
    subject: str
    request_text: str
    status: Status
    assignee_id: int | None
    assigned_at: datetime | None
    handling_notes: str
    handled_at: datetime | None
    result: str | None
    satisfaction: int | None
    reopen_count: int
    archived_at: datetime | None
    version: int


def rec_json(r: ServiceRecord, *, detail: bool = False) -> dict:
    out = {"id": r.id, "type": r.type, "customer_id": r.customer_id, "subject": r.subject,
           "request_text": r.request_text, "status": r.status, "creator_id": r.creator_id,
           "assignee_id": r.assignee_id, "assigned_by": r.assigned_by, "assigned_at": iso(r.assigned_at),
           "handling_notes": r.handling_notes, "handled_at": iso(r.handled_at), "result": r.result,
           "satisfaction": r.satisfaction, "rated_at": iso(r.rated_at), "reopen_count": r.reopen_count,
           "archived_at": iso(r.archived_at), "created_at": iso(r.created_at), "version": r.version}
    if detail:
        out["ratings"] = [{"rating": x.rating, "comment": x.comment, "rated_by": x.rated_by,
                           "rated_at": iso(x.rated_at)} for x in desk.ratings(db(), r)]
    return out


def _detail(r: ServiceRecord, status: int = 200):
    db().refresh(r)
    return respond(rec_json(r, detail=True), r.version, status)


@operation("/service-records", summary="List visible service requests (newest first)", tags=TAGS,
           permission="service.read", query=ServiceQuery)
def list_records(query: ServiceQuery):
    scope, s = current_scope(), db()
    f = desk.ServiceFilter(status=query.status, type=query.type, assignee_id=query.assignee_id,
                           customer_id=query.customer_id, open_only=query.open)
    after = decode_cursor(query.cursor).get("after")
    if after is not None and not isinstance(after, int):
        raise ApiError(422, "validation", "cursor: invalid cursor", [{"field": "cursor", "problem": "invalid cursor"}])
    rows = desk.list_records(s, scope, f, limit=query.limit + 1, after_id=after)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return {"items": [rec_json(r) for r in rows], "total": desk.count(s, scope, f),
            "next_cursor": encode_cursor({"after": rows[-1].id}) if more else None}


@operation("/service-records", "POST", summary="File a service request", tags=TAGS, permission="service.create",
           body=ServiceCreate, response=ServiceOut, responses={**ERR, 201: "created"})
def create_record(body: ServiceCreate):
    s = db()
    with domain_errors():
        r = desk.create(s, current_scope(), **body.model_dump())
    s.commit()
    return _detail(r, 201)


@operation("/service-records/<int:record_id>", summary="One service request with its rating history",
           tags=TAGS, permission="service.read", response=ServiceOut, responses=ERR)
def get_record(record_id: int):
    r = desk.get(db(), current_scope(), record_id)
    return respond(rec_json(r, detail=True), r.version)


@operation("/service-records/<int:record_id>", "PATCH",
           summary="Edit the request before work starts, or the handling notes while handling it",
           tags=TAGS, permission="service.read", body=ServiceUpdate, response=ServiceOut, responses=ERR)
def update_record(record_id: int, body: ServiceUpdate):
    s = db()
    with domain_errors():
        r = desk.update_request(s, current_scope(), record_id, body.model_dump(exclude_unset=True),
                                version=if_match_version())
    s.commit()
    return _detail(r)


@operation("/service-records/<int:record_id>", "DELETE", summary="Delete a service request (admin)", tags=TAGS,
           permission="service.delete", responses=ERR)
def delete_record(record_id: int):
    s = db()
    with domain_errors():
        desk.delete(s, current_scope(), record_id, version=if_match_version())
    s.commit()
    return "", 204


@operation("/service-records/<int:record_id>/assign", "POST",
           summary="Assign to a service agent (the customer's account manager, or admin)", tags=TAGS,
           permission="service.assign", body=AssignBody, response=ServiceOut, responses=ERR)
def assign_record(record_id: int, body: AssignBody):
    s = db()
    with domain_errors():
        r = desk.assign(s, current_scope(), record_id, body.assignee_id, version=if_match_version())
    s.commit()
    return _detail(r)


@operation("/service-records/<int:record_id>/start", "POST", summary="Start handling (the assigned agent)",
           tags=TAGS, permission="service.handle", response=ServiceOut, responses=ERR,
           description="An optional JSON body {\"notes\": \"...\"} adds a handling note.")
def start_record(record_id: int):
    s = db()
    data = request.get_json(silent=True) if request.data else None
    try:
        body = StartBody.model_validate(data) if data else StartBody()
    except ValidationError as e:
        raise ApiError(422, "validation", "invalid request body",
                       [{"field": ".".join(map(str, d["loc"])) or "body", "problem": d["msg"]} for d in e.errors()])
    with domain_errors():
        r = desk.start(s, current_scope(), record_id, notes=body.notes, version=if_match_version())
    s.commit()
    return _detail(r)


@operation("/service-records/<int:record_id>/resolve", "POST", summary="Resolve with a result (the assigned agent)",
           tags=TAGS, permission="service.handle", body=ResolveBody, response=ServiceOut, responses=ERR)
def resolve_record(record_id: int, body: ResolveBody):
    s = db()
    with domain_errors():
        r = desk.resolve(s, current_scope(), record_id, result=body.result, notes=body.notes,
                         version=if_match_version())
    s.commit()
    return _detail(r)


@operation("/service-records/<int:record_id>/rate", "POST",
           summary="Rate a resolved request 1-5: below 3 reopens it, 3 or above archives it", tags=TAGS,
           permission="service.rate", body=RateBody, response=ServiceOut, responses=ERR)
def rate_record(record_id: int, body: RateBody):
    s = db()
    with domain_errors():
        r = desk.rate(s, current_scope(), record_id, rating=body.rating, comment=body.comment,
                      version=if_match_version())
    s.commit()
    return _detail(r)
