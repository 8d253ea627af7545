"""Shared helpers: input errors, paging, optimistic locking, row serialisation."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from geo_crm.http import Conflict, Forbidden, NotFound

__all__ = ["Invalid", "NotFound", "Forbidden", "Conflict", "Page", "paginate", "check_version", "plain"]

MAX_LIMIT = 500


class Invalid(ValueError):
    """Bad input; `field` names the offending field (dotted path), `problem` says why."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


@dataclass
class Page:
    items: list
    total: int
    limit: int
    offset: int


def paginate(session: Session, stmt: Select, limit: int, offset: int, *, scalars: bool = True) -> Page:
    """Run `stmt` with LIMIT/OFFSET and count its total (same WHERE: the count never
    includes rows the caller may not see, because `stmt` is already scoped)."""
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    res = session.execute(stmt.limit(limit).offset(offset))
    items = list(res.scalars()) if scalars else list(res)
    return Page(items, int(total or 0), limit, offset)


def check_version(current: int, expected: int | None) -> None:
    """Optimistic locking: `expected` is the version the client last read (If-Match)."""
    if expected is not None and expected != current:
        raise Conflict(f"version mismatch: you have {expected}, the record is at {current}")


def plain(value: Any) -> Any:
    """A JSON-ready value (Decimal → float, dates → ISO 8601, times → HH:MM)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M")
    return value
