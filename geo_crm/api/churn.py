"""Churn warnings API: list/get, recovery measures, confirmed loss, and the scan (admin)."""
from __future__ import annotations

from datetime import date
from typing import Literal

from flask import current_app
from pydantic import Field

from geo_crm.api.framework import ApiError, StrictModel, decode_cursor, encode_cursor, if_match_version, operation
from geo_crm.api.sales import domain_errors, iso, respond
from geo_crm.churn import service as churn
from geo_crm.http import current_scope, db
from geo_crm.models import ChurnAlert

TAGS = ["churn"]
ERR = {404: "not found or not visible", 409: "the warning is closed", 412: "version mismatch (If-Match)",
       422: "invalid input"}


class AlertQuery(StrictModel):
    status: Literal["warning", "under_recovery", "confirmed_lost", "recovered"] | None = None
    open: bool = Field(False, description="only warning / under_recovery")
    owner_id: int | None = Field(None, ge=1, description="the customer's account manager")
    as_of: date | None = Field(None, description="day for 'months since' and 12-month revenue (default today)")
    limit: int = Field(50, ge=1, le=500)
    cursor: str | None = None


class MeasuresBody(StrictModel):
    measures: str = Field(min_length=1, max_length=5000)


class LossBody(StrictModel):
    reason: str = Field(min_length=1, max_length=2000)


class ScanBody(StrictModel):
    as_of: date | None = None
    months: int | None = Field(None, ge=1, le=120)


def _row_json(d: dict) -> dict:
    return {k: iso(v) for k, v in d.items()}


def alert_json(a: ChurnAlert) -> dict:
    return {"id": a.id, "customer_id": a.customer_id, "last_order_at": iso(a.last_order_at),
            "detected_at": iso(a.detected_at), "status": a.status, "recovery_measures": a.recovery_measures,
            "reason": a.reason, "decided_by": a.decided_by, "decided_at": iso(a.decided_at),
            "closed_at": iso(a.closed_at), "version": a.version}


@operation("/churn-alerts", summary="Churn warnings with last order, months since and 12-month revenue",
           tags=TAGS, permission="churn.read", query=AlertQuery)
def list_alerts(query: AlertQuery):
    scope, s = current_scope(), db()
    f = churn.AlertFilter(status=query.status, open_only=query.open, owner_id=query.owner_id)
    after = decode_cursor(query.cursor).get("after")
    if after is not None and not isinstance(after, int):
        raise ApiError(422, "validation", "cursor: invalid cursor", [{"field": "cursor", "problem": "invalid cursor"}])
    rows = churn.list_alerts(s, scope, f, as_of=query.as_of, limit=query.limit + 1, after_id=after)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return {"items": [_row_json(r) for r in rows], "total": churn.count(s, scope, f),
            "next_cursor": encode_cursor({"after": rows[-1]["id"]}) if more else None}


@operation("/churn-alerts/<int:alert_id>", summary="One churn warning", tags=TAGS, permission="churn.read",
           responses=ERR)
def get_alert(alert_id: int):
    a = churn.get(db(), current_scope(), alert_id)
    return respond(alert_json(a), a.version)


@operation("/churn-alerts/<int:alert_id>/recover", "POST",
           summary="Record recovery measures (status under_recovery; the customer's account manager)",
           tags=TAGS, permission="churn.decide", body=MeasuresBody, responses=ERR)
def recover_alert(alert_id: int, body: MeasuresBody):
    s = db()
    with domain_errors():
        a = churn.recover(s, current_scope(), alert_id, body.measures, version=if_match_version())
    s.commit()
    return respond(alert_json(a), a.version)


@operation("/churn-alerts/<int:alert_id>/confirm-loss", "POST",
           summary="Confirm the customer is lost (customer status becomes lost)", tags=TAGS,
           permission="churn.decide", body=LossBody, responses=ERR)
def confirm_loss(alert_id: int, body: LossBody):
    s = db()
    with domain_errors():
        a = churn.confirm_loss(s, current_scope(), alert_id, body.reason, version=if_match_version())
    s.commit()
    return respond(alert_json(a), a.version)


@operation("/churn/scan", "POST", summary="Run the churn scan now (admin; the scheduled job does the same)",
           tags=TAGS, permission="churn.scan", body=ScanBody)
def run_scan(body: ScanBody):
    s = db()
    with domain_errors():
        months = body.months or churn.churn_months(s, current_app.config["GEO_CRM"].churn_months)
        r = churn.scan(s, as_of=body.as_of, months=months)
    s.commit()
    return r.as_dict()
