"""Opportunities API: CRUD, assignment, stage changes, win/lose, development plan steps."""
from __future__ import annotations

import contextlib
from datetime import date, datetime
from typing import Literal

from flask import jsonify
from pydantic import BaseModel, Field

from geo_crm.api.framework import (ApiError, StrictModel, decode_cursor, encode_cursor, if_match_version,
                                   operation, with_etag)
from geo_crm.http import current_scope, db
from geo_crm.models import Opportunity
from geo_crm.sales import service as sales
from geo_crm.errors import InvalidInput, InvalidTransition

TAGS = ["opportunities"]
ERR = {404: "not found or not visible", 409: "not allowed in the current state", 412: "version mismatch (If-Match)",
       422: "invalid input"}


@contextlib.contextmanager
def domain_errors():
    """Workflow errors → API errors: invalid transition 409, invalid value 422."""
    try:
        yield
    except InvalidTransition as e:
        raise ApiError(409, "invalid_transition", str(e))
    except InvalidInput as e:
        raise ApiError(422, "validation", str(e), [{"field": e.field, "problem": e.problem}])


def iso(v):
    return v.isoformat() if isinstance(v, (date, datetime)) else v


def respond(payload: dict, version: int, status: int = 200):
    resp = jsonify(payload)
    resp.status_code = status
    return with_etag(resp, version)


# -- models -----------------------------------------------------------------------------------
class OpportunityQuery(StrictModel):
    stage: Literal["lead", "qualified", "proposal", "negotiation", "won", "lost"] | None = None
    status: Literal["open", "won", "lost"] | None = None
    assignee_id: int | None = Field(None, ge=1)
    q: str | None = Field(None, max_length=100)
    limit: int = Field(50, ge=1, le=500)
    cursor: str | None = None


class OpportunityCreate(StrictModel):
    source: str = Field(min_length=1, max_length=64, description="dictionary kind 'opportunity_source'")
    summary: str = Field(min_length=1, max_length=5000)
    customer_id: int | None = Field(None, ge=1, description="an existing visible customer, or ...")
    prospect_name: str | None = Field(None, max_length=200, description="... a prospect's name")
    prospect_lon: float | None = Field(None, ge=-180, le=180, description="prospect location, EPSG:4326")
    prospect_lat: float | None = Field(None, ge=-90, le=90)
    contact_name: str = Field("", max_length=200)
    contact_phone: str = Field("", max_length=50)
    probability: int | None = Field(None, ge=0, le=100, description="percent")
    amount: float = Field(0, ge=0, description="EUR")
    expected_close: date | None = None
    assignee_id: int | None = Field(None, ge=1, description="an account manager")


class OpportunityUpdate(StrictModel):
    source: str | None = Field(None, min_length=1, max_length=64)
    summary: str | None = Field(None, min_length=1, max_length=5000)
    prospect_name: str | None = Field(None, min_length=1, max_length=200)
    contact_name: str | None = Field(None, max_length=200)
    contact_phone: str | None = Field(None, max_length=50)
    probability: int | None = Field(None, ge=0, le=100)
    amount: float | None = Field(None, ge=0)
    expected_close: date | None = None


class AssignBody(StrictModel):
    assignee_id: int = Field(ge=1)


class StageBody(StrictModel):
    stage: Literal["lead", "qualified", "proposal", "negotiation", "won", "lost"]


class LoseBody(StrictModel):
    reason: str = Field(min_length=1, max_length=2000)


class StepCreate(StrictModel):
    planned_on: date
    action: str = Field(min_length=1, max_length=2000)


class StepUpdate(StrictModel):
    result: str | None = Field(None, min_length=1, max_length=5000)
    done_at: datetime | None = None
    planned_on: date | None = None
    action: str | None = Field(None, min_length=1, max_length=2000)


class StepOut(BaseModel):
    id: int
    opportunity_id: int
    planned_on: date
    action: str
    result: str | None
    done_at: datetime | None
    version: int


class OpportunityOut(BaseModel):
    id: int
    source: str
    customer_id: int | None
    prospect_name: str | None
    prospect_lon: float | None
    prospect_lat: float | None
    summary: str
    contact_name: str
    contact_phone: str
    probability: int
    amount: float
    stage: str
    status: str
    expected_close: date | None
    created_by: int | None
    assignee_id: int | None
    assigned_at: datetime | None
    closed_at: datetime | None
    lost_reason: str
    version: int
    created_at: datetime
    steps: list[StepOut] = []
    stage_history: list[dict] = []


def step_json(s) -> dict:
    return {"id": s.id, "opportunity_id": s.opportunity_id, "planned_on": iso(s.planned_on), "action": s.action,
            "result": s.result, "done_at": iso(s.done_at), "version": s.version}


def opp_json(o: Opportunity, *, detail: bool = False) -> dict:
    ll = sales.prospect_lonlat(o)
    out = {"id": o.id, "source": o.source, "customer_id": o.customer_id, "prospect_name": o.prospect_name,
           "prospect_lon": ll[0] if ll else None, "prospect_lat": ll[1] if ll else None, "summary": o.summary,
           "contact_name": o.contact_name, "contact_phone": o.contact_phone, "probability": o.probability,
           "amount": float(o.amount or 0), "stage": o.stage, "status": o.status,
           "expected_close": iso(o.expected_close), "created_by": o.created_by, "assignee_id": o.assignee_id,
           "assigned_at": iso(o.assigned_at), "closed_at": iso(o.closed_at), "lost_reason": o.lost_reason,
           "version": o.version, "created_at": iso(o.created_at)}
    if detail:
        out["steps"] = [step_json(s) for s in o.steps]
        out["stage_history"] = [{"from_stage": c.from_stage, "to_stage": c.to_stage, "changed_at": iso(c.changed_at),
                                 "changed_by": c.changed_by} for c in sales.stage_history(db(), o)]
    return out


def _detail(o: Opportunity, status: int = 200):
    s = db()
    s.refresh(o)
    return respond(opp_json(o, detail=True), o.version, status)


# -- opportunities ----------------------------------------------------------------------------
@operation("/opportunities", summary="List visible opportunities (newest first) with a pipeline summary",
           tags=TAGS, permission="opportunity.read", query=OpportunityQuery)
def list_opportunities(query: OpportunityQuery):
    scope, s = current_scope(), db()
    f = sales.OpportunityFilter(stage=query.stage, status=query.status, assignee_id=query.assignee_id, q=query.q)
    after = decode_cursor(query.cursor).get("after")
    if after is not None and not isinstance(after, int):
        raise ApiError(422, "validation", "cursor: invalid cursor", [{"field": "cursor", "problem": "invalid cursor"}])
    rows = sales.list_opportunities(s, scope, f, limit=query.limit + 1, after_id=after)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return {"items": [opp_json(o) for o in rows], "total": sales.count(s, scope, f),
            "next_cursor": encode_cursor({"after": rows[-1].id}) if more else None,
            "pipeline": sales.pipeline(s, scope, f)}


@operation("/opportunities", "POST", summary="Create an opportunity (sales manager, admin)", tags=TAGS,
           permission="opportunity.create", body=OpportunityCreate, response=OpportunityOut,
           responses={**ERR, 201: "created"})
def create_opportunity(body: OpportunityCreate):
    s = db()
    with domain_errors():
        o = sales.create(s, current_scope(), **body.model_dump())
    s.commit()
    return _detail(o, 201)


@operation("/opportunities/<int:opp_id>", summary="One opportunity with plan steps and stage history",
           tags=TAGS, permission="opportunity.read", response=OpportunityOut, responses=ERR)
def get_opportunity(opp_id: int):
    o = sales.get(db(), current_scope(), opp_id)
    return respond(opp_json(o, detail=True), o.version)


@operation("/opportunities/<int:opp_id>", "PATCH", summary="Edit an open opportunity's details", tags=TAGS,
           permission="opportunity.update", body=OpportunityUpdate, response=OpportunityOut, responses=ERR)
def update_opportunity(opp_id: int, body: OpportunityUpdate):
    s = db()
    with domain_errors():
        o = sales.update(s, current_scope(), opp_id, body.model_dump(exclude_unset=True), version=if_match_version())
    s.commit()
    return _detail(o)


@operation("/opportunities/<int:opp_id>", "DELETE", summary="Delete an opportunity (admin)", tags=TAGS,
           permission="opportunity.delete", responses=ERR)
def delete_opportunity(opp_id: int):
    s = db()
    with domain_errors():
        sales.delete(s, current_scope(), opp_id, version=if_match_version())
    s.commit()
    return "", 204


@operation("/opportunities/<int:opp_id>/assign", "POST", summary="Assign to an account manager", tags=TAGS,
           permission="opportunity.assign", body=AssignBody, response=OpportunityOut, responses=ERR)
def assign_opportunity(opp_id: int, body: AssignBody):
    s = db()
    with domain_errors():
        o = sales.assign(s, current_scope(), opp_id, body.assignee_id, version=if_match_version())
    s.commit()
    return _detail(o)


@operation("/opportunities/<int:opp_id>/stage", "POST", summary="Move to another open stage (recorded)",
           tags=TAGS, permission="opportunity.update", body=StageBody, response=OpportunityOut, responses=ERR)
def stage_opportunity(opp_id: int, body: StageBody):
    s = db()
    with domain_errors():
        o = sales.change_stage(s, current_scope(), opp_id, body.stage, version=if_match_version())
    s.commit()
    return _detail(o)


@operation("/opportunities/<int:opp_id>/win", "POST",
           summary="Close as won: creates the customer from a prospect, or activates the customer",
           tags=TAGS, permission="opportunity.close", response=OpportunityOut, responses=ERR)
def win_opportunity(opp_id: int):
    s = db()
    with domain_errors():
        o = sales.win(s, current_scope(), opp_id, version=if_match_version())
    s.commit()
    return _detail(o)


@operation("/opportunities/<int:opp_id>/lose", "POST", summary="Close as lost, with a reason", tags=TAGS,
           permission="opportunity.close", body=LoseBody, response=OpportunityOut, responses=ERR)
def lose_opportunity(opp_id: int, body: LoseBody):
    s = db()
    with domain_errors():
        o = sales.lose(s, current_scope(), opp_id, body.reason, version=if_match_version())
    s.commit()
    return _detail(o)


# -- plan steps --------------------------------------------------------------------------------
@operation("/opportunities/<int:opp_id>/plan-steps", summary="The development plan, by planned date",
           tags=TAGS, permission="opportunity.read", responses=ERR)
def list_steps(opp_id: int):
    o = sales.get(db(), current_scope(), opp_id)
    return {"items": [step_json(st) for st in o.steps]}


@operation("/opportunities/<int:opp_id>/plan-steps", "POST", summary="Add a dated plan step", tags=TAGS,
           permission="opportunity.plan", body=StepCreate, response=StepOut, responses={**ERR, 201: "created"})
def create_step(opp_id: int, body: StepCreate):
    s = db()
    with domain_errors():
        st = sales.add_step(s, current_scope(), opp_id, planned_on=body.planned_on, action=body.action)
    s.commit()
    return respond(step_json(st), st.version, 201)


@operation("/opportunities/<int:opp_id>/plan-steps/<int:step_id>", "PATCH",
           summary="Record a plan step's result (or re-plan it)", tags=TAGS, permission="opportunity.plan",
           body=StepUpdate, response=StepOut, responses=ERR)
def update_step(opp_id: int, step_id: int, body: StepUpdate):
    s = db()
    data = body.model_dump(exclude_unset=True)
    if not data:
        raise ApiError(422, "validation", "body: nothing to change", [{"field": "body", "problem": "nothing to change"}])
    with domain_errors():
        st = sales.record_result(s, current_scope(), opp_id, step_id, result=data.get("result"),
                                 done_at=data.get("done_at"), planned_on=data.get("planned_on"),
                                 action=data.get("action"), version=if_match_version())
    s.commit()
    return respond(step_json(st), st.version)
