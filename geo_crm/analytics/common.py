"""Report parameters, the visible customer population, and the tabular result shape."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select, true

from geo_crm.customers.filters import CustomerFilter, filter_clauses
from geo_crm.models import Customer
from geo_crm.security.scope import Scope

WINDOW_DAYS = 365  # "12 months" everywhere in the reports: the 365 days (as_of - 365, as_of]
REVENUE_STATUSES = ("confirmed", "delivered")  # draft and cancelled orders are not revenue


@dataclass(frozen=True)
class ReportParams:
    """Filters shared by every report. The period is inclusive: date_from..date_to.
    `date_to` is also the "as of" date for 12-month figures, recency and churn.
    `customer_ids` restricts the population further (tests, drill-downs)."""
    date_from: date
    date_to: date
    region_id: int | None = None
    territory_id: int | None = None
    level: tuple[str, ...] = ()
    owner_id: int | None = None
    customer_ids: tuple[int, ...] | None = None
    source: str = "auto"  # auto | live | materialized

    @property
    def as_of(self) -> date:
        return self.date_to

    @property
    def is_default_window(self) -> bool:
        return (self.date_to - self.date_from).days == WINDOW_DAYS - 1

    def as_dict(self) -> dict[str, Any]:
        return {"date_from": self.date_from.isoformat(), "date_to": self.date_to.isoformat(),
                "region_id": self.region_id, "territory_id": self.territory_id,
                "level": list(self.level), "owner_id": self.owner_id}

    def with_(self, **kw) -> "ReportParams":
        return replace(self, **kw)


def default_period(as_of: date) -> tuple[date, date]:
    """The trailing 12-month window ending at `as_of` (365 days inclusive)."""
    return as_of - timedelta(days=WINDOW_DAYS - 1), as_of


def customer_clauses(scope: Scope, p: ReportParams) -> list[ColumnElement[bool]]:
    """Predicates over `Customer`: visibility first, then the report filters."""
    f = CustomerFilter(level=list(p.level) or None, owner_id=p.owner_id, region_id=p.region_id,
                       territory_id=p.territory_id)
    out = [scope.customer_filter(), *filter_clauses(f)]
    if p.customer_ids is not None:
        out.append(Customer.id.in_(p.customer_ids or (-1,)))
    return out


def covers_everyone(scope: Scope, p: ReportParams) -> bool:
    """True when the population is every customer: a caller who sees everything and no
    customer filter. Only then may a query skip the join to the population."""
    return scope.sees_everything and p.region_id is None and p.territory_id is None and not p.level \
        and p.owner_id is None and p.customer_ids is None


def in_population(customer_id_col, scope: Scope, p: ReportParams) -> ColumnElement[bool]:
    """`customer_id_col IN (visible, filtered customers)`; TRUE when that is everyone
    (the column is a NOT NULL foreign key to customer, so the IN would keep every row)."""
    if covers_everyone(scope, p):
        return true()
    return customer_id_col.in_(population(scope, p))


def population(scope: Scope, p: ReportParams):
    """SELECT of the ids of visible customers matching the filters."""
    return select(Customer.id).where(*customer_clauses(scope, p))


@dataclass
class Table:
    """A report table: `columns` is [(key, label)], `rows` a list of dicts."""
    columns: list[tuple[str, str]]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"columns": [{"key": k, "label": lbl} for k, lbl in self.columns], "rows": self.rows}


def num(v, digits: int = 2):
    """Numbers for JSON: Decimal/float rounded, None stays None."""
    if v is None:
        return None
    return round(float(v), digits)


def share(part, total, digits: int = 4):
    if not total:
        return None
    return round(float(part) / float(total), digits)
