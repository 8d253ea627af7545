"""Service request workflow. Functions take `(session, scope, ...)`, flush, never commit.

States: new → assigned → in_progress → resolved → (rating ≥ 3) archived
                                           ↑          (rating < 3) ──┘ back to in_progress
A customer files requests for their own record only; the owning account manager (or an
admin) assigns a service agent; the assignee starts and resolves; the customer (or the
account manager / admin on their behalf) rates 1–5. Every rating is kept in
`service_rating`; `customer.satisfaction` is the mean of the latest rating of each of
that customer's records.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from geo_crm.models import Customer, Dictionary, ServiceRating, ServiceRecord, User
from geo_crm.errors import Forbidden, InvalidInput, InvalidTransition, check_version, get_visible
from geo_crm.security.scope import Scope

REOPEN_BELOW = 3          # ratings below this reopen the record; this and above archive it
OPEN_STATUSES = ("new", "assigned", "in_progress", "resolved")


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class ServiceFilter:
    status: str | None = None
    type: str | None = None
    assignee_id: int | None = None
    customer_id: int | None = None
    open_only: bool = False


def visible(scope: Scope):
    return select(ServiceRecord).where(scope.service_record_filter())


def get(session: Session, scope: Scope, record_id: int, *, for_update: bool = False) -> ServiceRecord:
    """The service record, or NotFound when it does not exist or the caller may not see it."""
    return get_visible(session, ServiceRecord, record_id, scope.service_record_filter(), for_update=for_update)


def _filtered(scope: Scope, f: ServiceFilter):
    stmt = visible(scope)
    if f.status:
        stmt = stmt.where(ServiceRecord.status == f.status)
    if f.open_only:
        stmt = stmt.where(ServiceRecord.status != "archived")
    if f.type:
        stmt = stmt.where(ServiceRecord.type == f.type)
    if f.assignee_id:
        stmt = stmt.where(ServiceRecord.assignee_id == f.assignee_id)
    if f.customer_id:
        stmt = stmt.where(ServiceRecord.customer_id == f.customer_id)
    return stmt


def list_records(session: Session, scope: Scope, f: ServiceFilter, *, limit: int = 50,
                 after_id: int | None = None) -> list[ServiceRecord]:
    stmt = _filtered(scope, f)
    if after_id:
        stmt = stmt.where(ServiceRecord.id < after_id)
    return list(session.scalars(stmt.order_by(ServiceRecord.id.desc()).limit(limit)))


def count(session: Session, scope: Scope, f: ServiceFilter) -> int:
    return session.scalar(select(func.count()).select_from(_filtered(scope, f).subquery()))


def status_counts(session: Session, scope: Scope) -> dict[str, int]:
    rows = session.execute(select(ServiceRecord.status, func.count()).where(scope.service_record_filter())
                           .group_by(ServiceRecord.status)).all()
    return {s: n for s, n in rows}


def ratings(session: Session, rec: ServiceRecord) -> list[ServiceRating]:
    return list(session.scalars(select(ServiceRating).where(ServiceRating.service_record_id == rec.id)
                                .order_by(ServiceRating.rated_at, ServiceRating.id)))


def service_types(session: Session) -> list[Dictionary]:
    return list(session.scalars(select(Dictionary).where(Dictionary.kind == "service_type", Dictionary.active)
                                .order_by(Dictionary.sort)))


def service_agents(session: Session) -> list[User]:
    return list(session.scalars(select(User).where(User.role == "service_agent", User.is_active)
                                .order_by(User.full_name, User.username)))


# -- checks ------------------------------------------------------------------------------------
def _require(scope: Scope, action: str) -> None:
    if not scope.can(action):
        raise Forbidden(action)


def _status(rec: ServiceRecord, allowed: tuple[str, ...], verb: str) -> None:
    if rec.status not in allowed:
        raise InvalidTransition(f"cannot {verb} a request that is {rec.status.replace('_', ' ')}"
                                f" (allowed when {' or '.join(a.replace('_', ' ') for a in allowed)})")


def _require_handler(scope: Scope, rec: ServiceRecord) -> None:
    """Only the assigned agent (or an admin) handles a request."""
    _require(scope, "service.handle")
    if scope.role != "admin" and rec.assignee_id != scope.user_id:
        raise Forbidden("service.handle")


# -- writing -----------------------------------------------------------------------------------
def create(session: Session, scope: Scope, *, type: str, request_text: str, customer_id: int | None = None,
           subject: str = "") -> ServiceRecord:
    """File a request. A customer login files for its own customer only."""
    _require(scope, "service.create")
    if scope.role == "customer":
        if customer_id is not None and customer_id != scope.customer_id:
            raise InvalidInput("customer_id", "no such customer")
        customer_id = scope.customer_id
    if customer_id is None:
        raise InvalidInput("customer_id", "choose the customer")
    if not session.scalar(select(exists().where(Customer.id == customer_id, scope.customer_filter()))):
        raise InvalidInput("customer_id", "no such customer")
    if not session.scalar(select(exists().where(Dictionary.kind == "service_type", Dictionary.code == type,
                                                Dictionary.active))):
        raise InvalidInput("type", f"unknown service type {type!r}")
    if not (request_text or "").strip():
        raise InvalidInput("request_text", "describe the request")
    rec = ServiceRecord(type=type, customer_id=customer_id, subject=(subject or "").strip()[:200],
                        request_text=request_text.strip(), status="new", creator_id=scope.user_id)
    if scope.role == "service_agent":
        # an agent filing a request handles it: otherwise it would vanish from their view
        rec.status, rec.assignee_id, rec.assigned_by, rec.assigned_at = "assigned", scope.user_id, scope.user_id, _now()
    session.add(rec)
    session.flush()
    session.refresh(rec)
    return rec


def update_request(session: Session, scope: Scope, record_id: int, changes: dict, *,
                   version: int | None = None) -> ServiceRecord:
    """Edit the request (type, subject, text) before work starts, or the handling notes
    while the assignee works on it."""
    rec = get(session, scope, record_id, for_update=True)
    check_version(rec.version, version)
    for key, value in changes.items():
        if key == "handling_notes":
            _require_handler(scope, rec)
            _status(rec, ("assigned", "in_progress"), "add handling notes to")
            rec.handling_notes = (value or "").strip()
        elif key in ("type", "subject", "request_text"):
            _require(scope, "service.create")
            if scope.role == "service_agent":
                raise Forbidden("service.update")
            _status(rec, ("new", "assigned"), "edit")
            if key == "type" and not session.scalar(select(exists().where(
                    Dictionary.kind == "service_type", Dictionary.code == value, Dictionary.active))):
                raise InvalidInput("type", f"unknown service type {value!r}")
            if key == "request_text" and not (value or "").strip():
                raise InvalidInput("request_text", "describe the request")
            setattr(rec, key, (value or "").strip())
        else:
            raise InvalidInput(key, "cannot be changed here")
    session.flush()
    return rec


def assign(session: Session, scope: Scope, record_id: int, assignee_id: int, *,
           version: int | None = None) -> ServiceRecord:
    """The customer's account manager (or an admin) assigns a service agent."""
    _require(scope, "service.assign")
    rec = get(session, scope, record_id, for_update=True)
    check_version(rec.version, version)
    if scope.role != "admin":
        owner = session.scalar(select(Customer.owner_id).where(Customer.id == rec.customer_id))
        if owner != scope.user_id:
            raise Forbidden("service.assign")
    _status(rec, ("new", "assigned", "in_progress"), "assign")
    agent = session.get(User, assignee_id)
    if agent is None or not agent.is_active or agent.role != "service_agent":
        raise InvalidInput("assignee_id", "the assignee must be an active service agent")
    rec.assignee_id, rec.assigned_by, rec.assigned_at, rec.status = agent.id, scope.user_id, _now(), "assigned"
    session.flush()
    return rec


def start(session: Session, scope: Scope, record_id: int, *, notes: str | None = None,
          version: int | None = None) -> ServiceRecord:
    rec = get(session, scope, record_id, for_update=True)
    check_version(rec.version, version)
    _require_handler(scope, rec)
    _status(rec, ("assigned",), "start")
    rec.status = "in_progress"
    if notes and notes.strip():
        rec.handling_notes = _append(rec.handling_notes, notes)
    session.flush()
    return rec


def _append(existing: str, notes: str) -> str:
    stamp = _now().strftime("%Y-%m-%d %H:%M")
    line = f"[{stamp}] {notes.strip()}"
    return f"{existing}\n{line}" if existing else line


def resolve(session: Session, scope: Scope, record_id: int, *, result: str, notes: str | None = None,
            version: int | None = None) -> ServiceRecord:
    if not (result or "").strip():
        raise InvalidInput("result", "describe how the request was resolved")
    rec = get(session, scope, record_id, for_update=True)
    check_version(rec.version, version)
    _require_handler(scope, rec)
    _status(rec, ("in_progress",), "resolve")
    if notes and notes.strip():
        rec.handling_notes = _append(rec.handling_notes, notes)
    rec.status, rec.result, rec.handled_at = "resolved", result.strip(), _now()
    session.flush()
    return rec


def rate(session: Session, scope: Scope, record_id: int, *, rating: int, comment: str = "",
         version: int | None = None) -> ServiceRecord:
    """Rate a resolved request 1–5. Below 3 reopens it for the same agent; 3 or above
    archives it. Then the customer's satisfaction is recomputed."""
    _require(scope, "service.rate")
    if not isinstance(rating, int) or not 1 <= rating <= 5:
        raise InvalidInput("rating", "must be a whole number from 1 to 5")
    rec = get(session, scope, record_id, for_update=True)   # customers see only their own records
    check_version(rec.version, version)
    if scope.role == "account_manager":
        owner = session.scalar(select(Customer.owner_id).where(Customer.id == rec.customer_id))
        if owner != scope.user_id:
            raise Forbidden("service.rate")
    _status(rec, ("resolved",), "rate")
    now = _now()
    session.add(ServiceRating(service_record_id=rec.id, rating=rating, comment=(comment or "").strip(),
                              rated_by=scope.user_id, rated_at=now))
    rec.satisfaction, rec.rated_at = rating, now
    if rating < REOPEN_BELOW:
        rec.status, rec.reopen_count, rec.archived_at = "in_progress", rec.reopen_count + 1, None
    else:
        rec.status, rec.archived_at = "archived", now
    session.flush()
    recompute_satisfaction(session, rec.customer_id)
    return rec


def recompute_satisfaction(session: Session, customer_id: int) -> float | None:
    """customer.satisfaction := mean of the latest rating of each rated record (2 decimals)."""
    mean = select(func.round(func.avg(ServiceRecord.satisfaction), 2)).where(
        ServiceRecord.customer_id == customer_id, ServiceRecord.satisfaction.is_not(None)).scalar_subquery()
    session.execute(update(Customer).where(Customer.id == customer_id).values(satisfaction=mean)
                    .execution_options(synchronize_session=False))
    value = session.scalar(select(Customer.satisfaction).where(Customer.id == customer_id))
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Customer) and obj.id == customer_id:
            session.expire(obj, ["satisfaction"])
    return None if value is None else float(value)


def delete(session: Session, scope: Scope, record_id: int, *, version: int | None = None) -> None:
    _require(scope, "service.delete")
    rec = get(session, scope, record_id, for_update=True)
    check_version(rec.version, version)
    session.delete(rec)
    session.flush()
