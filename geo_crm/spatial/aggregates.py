"""The density revenue snapshot (migration 0014): refresh, freshness, and which questions
it can answer exactly.

`mv_density_customer` holds, per located customer with revenue, the sum of its
non-cancelled orders dated in (as_of - 365 days, as_of] (EUR), as_of = the refresh
date, with the attributes density filters by; `mv_density_region_revenue` and
`mv_density_territory_revenue` sum it per (area, level, status, industry, owner_id).
They are exactly the base tables at refresh time; `refresh` (`geo-crm spatial refresh`,
nightly after `geo-crm reports refresh`) brings them forward and records the time in
`report_refresh`.

A density request may take its revenue from the snapshot when (1) the snapshot was
taken on the request's `as_of`, (2) the caller sees every customer (see
`scope_predicate`), and (3) every filter is one of level, status, industry,
owner_id, and region_id (region and hex) — otherwise revenue is summed from the orders.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, column, table, true
from sqlalchemy.orm import Session

from geo_crm import matviews
from geo_crm.customers.filters import CustomerFilter
from geo_crm.security.scope import Scope

CUSTOMER_VIEW = "mv_density_customer"
REGION_VIEW = "mv_density_region_revenue"
TERRITORY_VIEW = "mv_density_territory_revenue"
VIEWS = (CUSTOMER_VIEW, REGION_VIEW, TERRITORY_VIEW)   # refresh order: the rollups read the first

KEYS = ("level", "status", "industry", "owner_id")


def view(name: str, *extra: str):
    """A lightweight table() of a snapshot view, for building predicates."""
    return table(name, *(column(c) for c in (*KEYS, *extra)))


@dataclass(frozen=True)
class Snapshot:
    as_of: date
    refreshed_at: datetime


def refresh(session: Session, *, concurrently: bool = True, log=lambda m: None) -> dict[str, float]:
    """Refresh the snapshot views and record when (see geo_crm.matviews.refresh)."""
    return matviews.refresh(session, VIEWS, concurrently=concurrently, log=log)


def snapshot(session: Session) -> Snapshot | None:
    """When the snapshot was taken, if every view of it is populated and was refreshed on
    the same day (else None: revenue is computed from the orders)."""
    views = matviews.status(session, VIEWS).values()
    if len(views) != len(VIEWS) or not all(v["populated"] and v["as_of"] for v in views):
        return None
    if len({v["as_of"] for v in views}) != 1:
        return None
    return Snapshot(next(iter(views))["as_of"], max(v["refreshed_at"] for v in views))


def scope_predicate(scope: Scope, t, by: str):
    """The caller's visibility on a snapshot view `t`, or None when the snapshot may not
    answer for it (revenue then comes from the orders).

    Only callers who see every customer use the snapshot. Ownership and territory
    membership are keys of the snapshot, but as of the refresh: a customer reassigned or
    moved out of a territory since then would still add its revenue to its former
    owner's or manager's figures, an aggregate of a customer they may no longer see."""
    if not scope.can("order.read"):
        return None
    return true() if scope.sees_everything else None


def filter_predicate(f: CustomerFilter | None, t, by: str):
    """The CRM filters on a snapshot view `t`, or None when one of them cannot be
    expressed there."""
    if f is None:
        return true()
    given = f.model_dump(exclude_none=True)
    allowed = set(KEYS) | ({"region_id"} if by in ("region", "hex") else set())
    if set(given) - allowed:
        return None
    clauses = [true()]
    for key in ("level", "status", "industry"):
        if getattr(f, key):
            clauses.append(t.c[key].in_(list(getattr(f, key))))
    if f.owner_id is not None:
        clauses.append(t.c.owner_id == f.owner_id)
    if f.region_id is not None:
        clauses.append(t.c.region_id == f.region_id)
    return and_(*clauses)


def usable(session: Session, scope: Scope, f: CustomerFilter | None, by: str, as_of: date, t):
    """(snapshot, predicate on `t`) when density revenue may come from the snapshot, else None."""
    sp, fp = scope_predicate(scope, t, by), filter_predicate(f, t, by)
    if sp is None or fp is None:
        return None
    snap = snapshot(session)
    if snap is None or snap.as_of != as_of:
        return None
    return snap, and_(sp, fp)
