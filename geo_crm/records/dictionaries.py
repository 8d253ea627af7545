"""Editable code lists (industries, service types, opportunity sources, ...)."""
from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from geo_crm.models import Dictionary
from geo_crm.records.common import Forbidden, Invalid, NotFound

_CODE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
READ = "dictionary.read"
WRITE = "dictionary.write"


def entry_dict(d: Dictionary) -> dict:
    return {"id": d.id, "kind": d.kind, "code": d.code, "label": d.label, "sort": d.sort, "active": d.active}


def kinds(session: Session, scope) -> list[str]:
    if not scope.can(READ):
        raise Forbidden(READ)
    return list(session.scalars(select(Dictionary.kind).distinct().order_by(Dictionary.kind)))


def list_entries(session: Session, scope, *, kind: str | None = None, active: bool | None = None) -> list[Dictionary]:
    if not scope.can(READ):
        raise Forbidden(READ)
    stmt = select(Dictionary).order_by(Dictionary.kind, Dictionary.sort, Dictionary.code)
    if kind:
        stmt = stmt.where(Dictionary.kind == kind)
    if active is not None:
        stmt = stmt.where(Dictionary.active.is_(active))
    return list(session.scalars(stmt))


def get_entry(session: Session, scope, entry_id: int) -> Dictionary:
    if not scope.can(READ):
        raise NotFound()
    d = session.get(Dictionary, entry_id)
    if d is None:
        raise NotFound()
    return d


def _check(d: Dictionary) -> None:
    if not _KIND.match(d.kind or ""):
        raise Invalid("kind", "lowercase letters, digits and _ (max 32)")
    if not _CODE.match(d.code or ""):
        raise Invalid("code", "lowercase letters, digits, _ and - (max 64)")
    if not (d.label or "").strip():
        raise Invalid("label", "required")


def create_entry(session: Session, scope, data: dict) -> Dictionary:
    if not scope.can(WRITE):
        raise Forbidden(WRITE)
    d = Dictionary(kind=data.get("kind"), code=data.get("code"), label=data.get("label"),
                   sort=data.get("sort") or 0, active=data.get("active", True))
    _check(d)
    if session.scalar(select(Dictionary.id).where(Dictionary.kind == d.kind, Dictionary.code == d.code)):
        raise Invalid("code", f"already exists in {d.kind}")
    session.add(d)
    session.flush()
    return d


def update_entry(session: Session, scope, entry_id: int, data: dict) -> Dictionary:
    """`kind` and `code` are stable keys referenced by records; only label, sort and
    active change."""
    d = get_entry(session, scope, entry_id)
    if not scope.can(WRITE):
        raise Forbidden(WRITE)
    for k in ("kind", "code"):
        if k in data and data[k] != getattr(d, k):
            raise Invalid(k, "cannot be changed (records refer to it); deactivate and add a new entry")
    for k in ("label", "sort", "active"):
        if k in data and data[k] is not None:
            setattr(d, k, data[k])
    _check(d)
    session.flush()
    return d


def delete_entry(session: Session, scope, entry_id: int) -> None:
    """Entries are deactivated, not deleted: old records keep their meaning."""
    d = get_entry(session, scope, entry_id)
    if not scope.can(WRITE):
        raise Forbidden(WRITE)
    d.active = False
    session.flush()
