"""Shared helpers: input errors, paging, optimistic locking, row serialisation."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from geo_crm.errors import Conflict, Forbidden, NotFound, check_version
from geo_crm.errors import InvalidInput as Invalid

__all__ = ["Invalid", "NotFound", "Forbidden", "Conflict", "Page", "paginate", "check_version", "plain"]

MAX_LIMIT = 500


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
