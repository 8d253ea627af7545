"""Domain errors and the one "visible record or NotFound" lookup.

Domain code raises these; the delivery layers map them (`geo_crm.app` and
`geo_crm.api.framework`): `NotFound` → 404, `Conflict` → 412 with If-Match or 409,
`Forbidden` → 403, `InvalidInput` → 422 naming the field, `InvalidTransition` → 409.
No Flask here: the domain must not depend on the web framework.
"""
from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

T = TypeVar("T")


class NotFound(Exception):
    """The record does not exist *or the caller may not see it*: both answer 404."""


class Conflict(Exception):
    """Optimistic-lock conflict (stale version): 412 with If-Match, 409 otherwise."""


class Forbidden(Exception):
    """The caller can see the record but may not do this to it."""


class InvalidInput(ValueError):
    """A value is invalid; `field` names it (dotted path), `problem` says why."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


class InvalidTransition(Exception):
    """The record's state does not allow this step (e.g. rating an unresolved request)."""


def check_version(current: int, expected: int | None) -> None:
    """Optimistic locking: `expected` is the version the caller last read (None: skip)."""
    if expected is not None and expected != current:
        raise Conflict(f"version mismatch: you have {expected}, the record is at {current}; reload and retry")


def get_visible(session: Session, model: type[T], ident: Any, *visible: ColumnElement[bool],
                for_update: bool = False) -> T:
    """The `model` row with primary key `ident` that also satisfies the `visible`
    predicates (the caller's Scope, and any extra condition), else `NotFound`.

    Absence and invisibility answer alike, so existence is never revealed.
    `for_update` locks the row (only that table's row, not joined ones).
    """
    stmt = select(model).where(model.id == ident, *visible)  # type: ignore[attr-defined]
    if for_update:
        stmt = stmt.with_for_update(of=model)
    row = session.scalars(stmt).first()
    if row is None:
        raise NotFound()
    return row
