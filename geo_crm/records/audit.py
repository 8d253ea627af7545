"""Audit-log queries (admin). Rows are written by the `crm_audit` DB trigger with the
acting user, old and new values (changed keys only for updates)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from geo_crm.models import AuditLog
from geo_crm.records.common import Forbidden, Invalid, Page, paginate, plain
from geo_crm.security.scope import Scope

READ = "audit.read"


def audit_dict(a: AuditLog) -> dict:
    return {"id": a.id, "at": plain(a.at), "user_id": a.user_id, "username": a.username, "action": a.action,
            "entity": a.entity, "entity_id": a.entity_id, "old": a.old, "new": a.new,
            "remote_addr": a.remote_addr}


def diff(a: AuditLog) -> list[dict]:
    """[{key, old, new}] for display; keys sorted, geometry shown as (changed)."""
    old, new = a.old or {}, a.new or {}
    out = []
    for k in sorted(set(old) | set(new)):
        o, n = old.get(k), new.get(k)
        if a.action == "update" and o == n:
            continue
        out.append({"key": k, "old": o, "new": n})
    return out


def _day_start(d: date | datetime) -> datetime:
    if isinstance(d, datetime):
        return d if d.tzinfo else d.replace(tzinfo=timezone.utc)
    return datetime.combine(d, time(0), tzinfo=timezone.utc)


def query(session: Session, scope: Scope, *, entity: str | None = None, entity_id: str | None = None,
          user_id: int | None = None, username: str | None = None, action: str | None = None,
          date_from: date | None = None, date_to: date | None = None, limit: int = 50, offset: int = 0) -> Page:
    """Newest first. `date_to` is inclusive (whole day, UTC)."""
    if not scope.can(READ):
        raise Forbidden(READ)
    if date_from and date_to and date_to < date_from:
        raise Invalid("date_to", "must not be before date_from")
    stmt = select(AuditLog).order_by(AuditLog.at.desc(), AuditLog.id.desc())
    if entity:
        stmt = stmt.where(AuditLog.entity == entity)
    if entity_id:
        stmt = stmt.where(AuditLog.entity_id == str(entity_id))
    if user_id is not None:
        stmt = stmt.where(AuditLog.user_id == user_id)
    if username:
        stmt = stmt.where(AuditLog.username == username)
    if action:
        stmt = stmt.where(AuditLog.action == action)
    if date_from:
        stmt = stmt.where(AuditLog.at >= _day_start(date_from))
    if date_to:
        stmt = stmt.where(AuditLog.at < _day_start(date_to) + timedelta(days=1))
    return paginate(session, stmt, limit, offset)


def entities(session: Session, scope: Scope) -> list[str]:
    if not scope.can(READ):
        raise Forbidden(READ)
    return list(session.scalars(select(AuditLog.entity).distinct().order_by(AuditLog.entity)))
