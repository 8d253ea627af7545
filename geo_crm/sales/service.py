"""Opportunity workflow. Functions take `(session, scope, ...)`, know nothing of Flask,
and flush but never commit (the caller owns the transaction).

Rules:
- a sales manager or admin creates an opportunity for a visible customer or a prospect
  (name, optional location lon/lat in EPSG:4326) and assigns it to an account manager;
- the assignee writes dated plan steps and records their results;
- stages lead → qualified → proposal → negotiation are recorded in
  `opportunity_stage_change`; the end is `won` (creates or activates the customer) or
  `lost` (with a reason); closed opportunities are read-only.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from geoalchemy2.shape import to_shape
from sqlalchemy import exists, func, select, text
from sqlalchemy.orm import Session

from geo_crm.models import (Customer, DevelopmentPlanStep, Dictionary, Opportunity, OpportunityStageChange,
                            User)
from geo_crm.errors import Forbidden, InvalidInput, InvalidTransition, NotFound, check_version, get_visible
from geo_crm.security.scope import Scope

OPEN_STAGES = ("lead", "qualified", "proposal", "negotiation")
STAGE_PROBABILITY = {"lead": 10, "qualified": 25, "proposal": 50, "negotiation": 75, "won": 100, "lost": 0}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _point(lon: float, lat: float):
    return func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)


@dataclass
class OpportunityFilter:
    stage: str | None = None
    status: str | None = None
    assignee_id: int | None = None
    q: str | None = None


# -- reading -------------------------------------------------------------------------------
def visible(scope: Scope):
    return select(Opportunity).where(scope.opportunity_filter())


def get(session: Session, scope: Scope, opp_id: int, *, for_update: bool = False) -> Opportunity:
    """The opportunity, or NotFound when it does not exist or the caller may not see it."""
    return get_visible(session, Opportunity, opp_id, scope.opportunity_filter(), for_update=for_update)


def _filtered(scope: Scope, f: OpportunityFilter):
    stmt = visible(scope)
    if f.stage:
        stmt = stmt.where(Opportunity.stage == f.stage)
    if f.status:
        stmt = stmt.where(Opportunity.status == f.status)
    if f.assignee_id:
        stmt = stmt.where(Opportunity.assignee_id == f.assignee_id)
    if f.q:
        like = f"%{f.q}%"
        stmt = stmt.outerjoin(Customer, Customer.id == Opportunity.customer_id).where(
            Opportunity.summary.ilike(like) | Opportunity.prospect_name.ilike(like) | Customer.name.ilike(like))
    return stmt


def list_opportunities(session: Session, scope: Scope, f: OpportunityFilter, *, limit: int = 50,
                       after_id: int | None = None) -> list[Opportunity]:
    """Newest first (by id), keyset-paged with `after_id` (the last id of the previous page)."""
    stmt = _filtered(scope, f)
    if after_id:
        stmt = stmt.where(Opportunity.id < after_id)
    return list(session.scalars(stmt.order_by(Opportunity.id.desc()).limit(limit)))


def count(session: Session, scope: Scope, f: OpportunityFilter) -> int:
    return session.scalar(select(func.count()).select_from(_filtered(scope, f).subquery()))


def pipeline(session: Session, scope: Scope, f: OpportunityFilter | None = None) -> list[dict]:
    """Per stage: count, total amount (EUR) and probability-weighted amount, in stage order."""
    base = _filtered(scope, f or OpportunityFilter()).subquery()
    rows = session.execute(select(base.c.stage, func.count(), func.coalesce(func.sum(base.c.amount), 0),
                                  func.coalesce(func.sum(base.c.amount * base.c.probability / 100.0), 0))
                           .group_by(base.c.stage)).all()
    by = {r[0]: r for r in rows}
    out = []
    for st in OPEN_STAGES + ("won", "lost"):
        r = by.get(st)
        out.append({"stage": st, "count": r[1] if r else 0, "amount": float(r[2]) if r else 0.0,
                    "weighted": round(float(r[3]), 2) if r else 0.0})
    return out


def stage_history(session: Session, opp: Opportunity) -> list[OpportunityStageChange]:
    return list(session.scalars(select(OpportunityStageChange)
                                .where(OpportunityStageChange.opportunity_id == opp.id)
                                .order_by(OpportunityStageChange.changed_at, OpportunityStageChange.id)))


def next_step(opp: Opportunity) -> DevelopmentPlanStep | None:
    """The earliest plan step without a result."""
    pending = [s for s in opp.steps if s.done_at is None]
    return min(pending, key=lambda s: (s.planned_on, s.id)) if pending else None


def prospect_lonlat(opp: Opportunity) -> tuple[float, float] | None:
    if opp.prospect_geom is None:
        return None
    p = to_shape(opp.prospect_geom)
    return (p.x, p.y)


def account_managers(session: Session) -> list[User]:
    return list(session.scalars(select(User).where(User.role == "account_manager", User.is_active)
                                .order_by(User.full_name, User.username)))


def sources(session: Session) -> list[Dictionary]:
    return list(session.scalars(select(Dictionary).where(Dictionary.kind == "opportunity_source",
                                                         Dictionary.active).order_by(Dictionary.sort)))


# -- checks ---------------------------------------------------------------------------------
def _require(scope: Scope, action: str) -> None:
    if not scope.can(action):
        raise Forbidden(action)


def _require_open(opp: Opportunity) -> None:
    if opp.status != "open":
        raise InvalidTransition(f"the opportunity is {opp.status}: closed opportunities are read-only")


def _check_source(session: Session, code: str) -> None:
    ok = session.scalar(select(exists().where(Dictionary.kind == "opportunity_source", Dictionary.code == code,
                                              Dictionary.active)))
    if not ok:
        raise InvalidInput("source", f"unknown opportunity source {code!r}")


def _check_customer(session: Session, scope: Scope, customer_id: int) -> Customer:
    c = session.scalars(select(Customer).where(Customer.id == customer_id, scope.customer_filter())).first()
    if c is None:
        raise InvalidInput("customer_id", "no such customer")
    return c


def _check_account_manager(session: Session, user_id: int) -> User:
    u = session.get(User, user_id)
    if u is None or not u.is_active or u.role != "account_manager":
        raise InvalidInput("assignee_id", "the assignee must be an active account manager")
    return u


def _record_stage(session: Session, scope: Scope, opp: Opportunity, to_stage: str) -> None:
    session.add(OpportunityStageChange(opportunity_id=opp.id, from_stage=opp.stage, to_stage=to_stage,
                                       changed_at=_now(), changed_by=scope.user_id))
    opp.stage = to_stage


def _check_lonlat(lon, lat) -> None:
    if (lon is None) != (lat is None):
        raise InvalidInput("prospect_lon" if lon is None else "prospect_lat", "give both longitude and latitude")
    if lon is not None and not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidInput("prospect_lon", "longitude must be within -180..180 and latitude within -90..90")


# -- writing --------------------------------------------------------------------------------
def create(session: Session, scope: Scope, *, source: str, summary: str, customer_id: int | None = None,
           prospect_name: str | None = None, prospect_lon: float | None = None,
           prospect_lat: float | None = None, contact_name: str = "", contact_phone: str = "",
           probability: int | None = None, amount: float = 0, expected_close: date | None = None,
           assignee_id: int | None = None) -> Opportunity:
    """A new opportunity in stage `lead` (assigned straight away when `assignee_id` is given)."""
    _require(scope, "opportunity.create")
    _check_source(session, source)
    if not summary or not summary.strip():
        raise InvalidInput("summary", "describe the opportunity")
    prospect_name = (prospect_name or "").strip() or None
    if customer_id is None and not prospect_name:
        raise InvalidInput("customer_id", "choose a customer or give a prospect name")
    if customer_id is not None and prospect_name:
        raise InvalidInput("prospect_name", "give either a customer or a prospect, not both")
    if customer_id is not None:
        _check_customer(session, scope, customer_id)
        if prospect_lon is not None:
            raise InvalidInput("prospect_lon", "a location is only given for prospects")
    _check_lonlat(prospect_lon, prospect_lat)
    if probability is not None and not 0 <= probability <= 100:
        raise InvalidInput("probability", "must be between 0 and 100")
    if amount is not None and amount < 0:
        raise InvalidInput("amount", "must not be negative")
    opp = Opportunity(source=source, customer_id=customer_id, prospect_name=prospect_name,
                      summary=summary.strip(), contact_name=contact_name or "", contact_phone=contact_phone or "",
                      probability=STAGE_PROBABILITY["lead"] if probability is None else probability,
                      amount=amount or 0, stage="lead", status="open", expected_close=expected_close,
                      created_by=scope.user_id)
    if prospect_lon is not None:
        opp.prospect_geom = _point(prospect_lon, prospect_lat)
    session.add(opp)
    session.flush()
    session.add(OpportunityStageChange(opportunity_id=opp.id, from_stage=None, to_stage="lead",
                                       changed_at=_now(), changed_by=scope.user_id))
    if assignee_id is not None:
        _check_account_manager(session, assignee_id)
        opp.assignee_id, opp.assigned_at = assignee_id, _now()
    session.flush()
    session.refresh(opp)
    return opp


EDITABLE = ("summary", "contact_name", "contact_phone", "probability", "amount", "expected_close", "source",
            "prospect_name")


def update(session: Session, scope: Scope, opp_id: int, changes: dict, *, version: int | None = None) -> Opportunity:
    """Edit descriptive fields of an open opportunity (not stage, assignee or status)."""
    _require(scope, "opportunity.update")
    opp = get(session, scope, opp_id, for_update=True)
    check_version(opp.version, version)
    _require_open(opp)
    for key, value in changes.items():
        if key not in EDITABLE:
            raise InvalidInput(key, "cannot be changed here")
        if key == "source":
            _check_source(session, value)
        if key == "summary" and not (value or "").strip():
            raise InvalidInput("summary", "describe the opportunity")
        if key == "prospect_name":
            if opp.customer_id is not None:
                raise InvalidInput("prospect_name", "this opportunity is for an existing customer")
            if not (value or "").strip():
                raise InvalidInput("prospect_name", "must not be blank")
        if key == "probability" and value is not None and not 0 <= value <= 100:
            raise InvalidInput("probability", "must be between 0 and 100")
        if key == "amount" and value is not None and value < 0:
            raise InvalidInput("amount", "must not be negative")
        setattr(opp, key, value if value is not None or key == "expected_close" else getattr(opp, key))
    session.flush()
    return opp


def assign(session: Session, scope: Scope, opp_id: int, assignee_id: int, *, version: int | None = None) -> Opportunity:
    _require(scope, "opportunity.assign")
    opp = get(session, scope, opp_id, for_update=True)
    check_version(opp.version, version)
    _require_open(opp)
    _check_account_manager(session, assignee_id)
    opp.assignee_id, opp.assigned_at = assignee_id, _now()
    session.flush()
    return opp


def change_stage(session: Session, scope: Scope, opp_id: int, stage: str, *,
                 version: int | None = None) -> Opportunity:
    """Move an open opportunity to another open stage; `won`/`lost` go through win/lose."""
    _require(scope, "opportunity.update")
    if stage in ("won", "lost"):
        raise InvalidTransition(f"use the {'win' if stage == 'won' else 'lose'} action to close an opportunity")
    if stage not in OPEN_STAGES:
        raise InvalidInput("stage", f"must be one of {', '.join(OPEN_STAGES)}")
    opp = get(session, scope, opp_id, for_update=True)
    check_version(opp.version, version)
    _require_open(opp)
    if opp.stage == stage:
        raise InvalidTransition(f"the opportunity is already in stage {stage}")
    _record_stage(session, scope, opp, stage)
    session.flush()
    return opp


def _next_customer_code(session: Session, customer_id: int) -> str:
    code = f"C{customer_id:07d}"
    n = 1
    while session.scalar(select(exists().where(Customer.code == code))):
        n += 1
        code = f"C{customer_id:07d}-{n}"
    return code


def win(session: Session, scope: Scope, opp_id: int, *, version: int | None = None) -> Opportunity:
    """Close as won. A prospect becomes an active customer (code generated, owner = the
    assignee, location = the prospect's point); an existing non-active customer is activated."""
    _require(scope, "opportunity.close")
    opp = get(session, scope, opp_id, for_update=True)
    check_version(opp.version, version)
    _require_open(opp)
    if opp.assignee_id is None:
        raise InvalidTransition("assign the opportunity to an account manager before closing it as won")
    if opp.customer_id is None:
        cid = session.scalar(text("SELECT nextval(pg_get_serial_sequence('customer', 'id'))"))
        cust = Customer(id=cid, code=_next_customer_code(session, cid), name=opp.prospect_name.strip(),
                        status="active", owner_id=opp.assignee_id,
                        geocode_quality="manual" if opp.prospect_geom is not None else "none")
        if opp.prospect_geom is not None:
            cust.geom = opp.prospect_geom
        session.add(cust)
        session.flush()
        opp.customer_id = cust.id
    else:
        cust = session.get(Customer, opp.customer_id, with_for_update=True)
        if cust.status != "active":
            cust.status = "active"
        if cust.owner_id is None:
            cust.owner_id = opp.assignee_id
    _record_stage(session, scope, opp, "won")
    opp.status, opp.probability, opp.closed_at = "won", 100, _now()
    session.flush()
    return opp


def lose(session: Session, scope: Scope, opp_id: int, reason: str, *, version: int | None = None) -> Opportunity:
    _require(scope, "opportunity.close")
    if not (reason or "").strip():
        raise InvalidInput("reason", "say why the opportunity was lost")
    opp = get(session, scope, opp_id, for_update=True)
    check_version(opp.version, version)
    _require_open(opp)
    _record_stage(session, scope, opp, "lost")
    opp.status, opp.probability, opp.closed_at, opp.lost_reason = "lost", 0, _now(), reason.strip()
    session.flush()
    return opp


def delete(session: Session, scope: Scope, opp_id: int, *, version: int | None = None) -> None:
    _require(scope, "opportunity.delete")
    opp = get(session, scope, opp_id, for_update=True)
    check_version(opp.version, version)
    session.delete(opp)
    session.flush()


# -- development plan ------------------------------------------------------------------------
def add_step(session: Session, scope: Scope, opp_id: int, *, planned_on: date, action: str) -> DevelopmentPlanStep:
    _require(scope, "opportunity.plan")
    if not (action or "").strip():
        raise InvalidInput("action", "describe the planned action")
    opp = get(session, scope, opp_id, for_update=True)
    _require_open(opp)
    step = DevelopmentPlanStep(opportunity_id=opp.id, planned_on=planned_on, action=action.strip(),
                               created_by=scope.user_id)
    session.add(step)
    session.flush()
    session.refresh(opp)
    return step


def get_step(session: Session, scope: Scope, opp_id: int, step_id: int) -> DevelopmentPlanStep:
    opp = get(session, scope, opp_id)
    step = session.get(DevelopmentPlanStep, step_id)
    if step is None or step.opportunity_id != opp.id:
        raise NotFound()
    return step


def record_result(session: Session, scope: Scope, opp_id: int, step_id: int, *, result: str,
                  done_at: datetime | None = None, planned_on: date | None = None, action: str | None = None,
                  version: int | None = None) -> DevelopmentPlanStep:
    """Record what came of a plan step (or re-plan it: new date/action)."""
    _require(scope, "opportunity.plan")
    opp = get(session, scope, opp_id, for_update=True)
    _require_open(opp)
    step = get_step(session, scope, opp_id, step_id)
    check_version(step.version, version)
    if planned_on is not None:
        step.planned_on = planned_on
    if action is not None:
        if not action.strip():
            raise InvalidInput("action", "describe the planned action")
        step.action = action.strip()
    if result is not None:
        if not result.strip():
            raise InvalidInput("result", "describe the result")
        step.result = result.strip()
        step.done_at = done_at or step.done_at or _now()
    session.flush()
    return step
