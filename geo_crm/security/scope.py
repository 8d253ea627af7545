"""The single visibility Scope.

Built once per request from the user, it turns into SQL predicates that every domain
query uses: lists, counts, detail lookups, search suggestions, tiles, density figures,
exports, reports and OGC collections. Nothing else writes its own visibility check.

Territory-based rules read the stored membership table `customer_territory` (kept
current by triggers when a customer moves or a territory is redrawn), so redrawing a
territory changes what a regional manager sees, and the check stays a B-tree lookup.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select, true
from sqlalchemy.orm import aliased

from geo_crm.models import (ChurnAlert, Contact, Customer, CustomerTerritory, Opportunity, Order,
                            ServiceRecord, Territory, UserTerritory)
from geo_crm.security.permissions import can

# columns each restricted role may read on a customer; None means all columns
BASIC_CUSTOMER_FIELDS = frozenset({
    "id", "code", "name", "kind", "industry", "level", "status", "address", "postcode", "city",
    "country", "phone", "email", "geom", "lon", "lat", "region_id"})
DELIVERY_CUSTOMER_FIELDS = frozenset({
    "id", "code", "name", "address", "postcode", "city", "country", "phone", "geom", "lon", "lat",
    "delivery_start", "delivery_end", "service_min", "delivery_notes", "service_branch_id", "region_id"})
# a customer's own login: its master data, not the CRM's internal assessment (notes, credit, owner)
SELF_CUSTOMER_FIELDS = BASIC_CUSTOMER_FIELDS | DELIVERY_CUSTOMER_FIELDS | frozenset({
    "website", "geocode_quality", "service_branch_id", "version", "created_at", "updated_at"})


@dataclass(frozen=True)
class Scope:
    """What one caller may see. Immutable; build with `Scope.for_user` or `Scope.system`."""
    role: str
    user_id: int | None = None
    username: str = ""
    customer_id: int | None = None   # the customer a 'customer' login belongs to
    branch_id: int | None = None     # the branch a logistics user works for
    territory_ids: tuple[int, ...] = field(default_factory=tuple)

    @classmethod
    def for_user(cls, user) -> "Scope":
        return cls(role=user.role, user_id=user.id, username=user.username,
                   customer_id=user.customer_id, branch_id=user.branch_id,
                   territory_ids=tuple(sorted(t.id for t in user.territories)))

    @classmethod
    def system(cls) -> "Scope":
        """Scheduled jobs and the CLI: sees everything."""
        return cls(role="admin", username="system")

    # -- capabilities -------------------------------------------------------------
    def can(self, action: str) -> bool:
        return can(self.role, action)

    def require(self, action: str) -> None:
        """Raise Forbidden unless the role may do `action` (the domain's own check, so
        no delivery layer is the only guard)."""
        if not self.can(action):
            from geo_crm.errors import Forbidden
            raise Forbidden(action)

    @property
    def sees_everything(self) -> bool:
        return self.role in ("admin", "executive")

    @property
    def cache_key(self) -> str:
        """Stable key of the visible set, for caching tiles and aggregates per scope."""
        if self.sees_everything:
            return "all"
        if self.role in ("sales_manager", "regional_manager"):
            return "t:" + ",".join(map(str, self.territory_ids))
        if self.role == "logistics":
            return f"b:{self.branch_id}"
        if self.role == "customer":
            return f"c:{self.customer_id}"
        return f"u:{self.user_id}"

    @property
    def customer_fields(self) -> frozenset[str] | None:
        """Customer columns this caller may read (None: all)."""
        if self.role == "service_agent":
            return BASIC_CUSTOMER_FIELDS
        if self.role == "logistics":
            return DELIVERY_CUSTOMER_FIELDS
        if self.role == "customer":
            return SELF_CUSTOMER_FIELDS
        return None

    # -- predicates -----------------------------------------------------------------
    # Subqueries use aliases so they never auto-correlate with the same table in the
    # outer query (e.g. a churn list joined to customer).
    def _in_my_territories(self, customer_id_col) -> ColumnElement[bool]:
        if not self.territory_ids:
            return false()
        ct = aliased(CustomerTerritory)
        return exists().where(ct.customer_id == customer_id_col, ct.territory_id.in_(self.territory_ids))

    def customer_filter(self, customer_id_col=None) -> ColumnElement[bool]:
        """Predicate over `Customer` (or over any column holding a customer id)."""
        cid = Customer.id if customer_id_col is None else customer_id_col
        r = self.role
        if r in ("admin", "executive"):
            return true()
        if r in ("sales_manager", "regional_manager"):
            return self._in_my_territories(cid)
        if r == "account_manager":
            if customer_id_col is None:
                return Customer.owner_id == self.user_id
            c2 = aliased(Customer)
            return exists().where(c2.id == cid, c2.owner_id == self.user_id)
        if r == "service_agent":
            sr = aliased(ServiceRecord)
            return exists().where(sr.customer_id == cid, sr.assignee_id == self.user_id)
        if r == "logistics":
            if self.branch_id is None:
                return false()
            if customer_id_col is None:
                return Customer.service_branch_id == self.branch_id
            c2 = aliased(Customer)
            return exists().where(c2.id == cid, c2.service_branch_id == self.branch_id)
        if r == "customer":
            return cid == self.customer_id if self.customer_id is not None else false()
        return false()

    def contact_filter(self) -> ColumnElement[bool]:
        return self.customer_filter(Contact.customer_id)

    def opportunity_filter(self) -> ColumnElement[bool]:
        r = self.role
        if not self.can("opportunity.read"):
            return false()
        if r in ("admin", "executive"):
            return true()
        if r == "account_manager":
            return Opportunity.assignee_id == self.user_id
        # territory roles: the customer's stored membership, or a prospect's own location
        t = aliased(Territory)
        prospect_inside = and_(
            Opportunity.customer_id.is_(None), Opportunity.prospect_geom.is_not(None),
            exists().where(t.id.in_(self.territory_ids or (-1,)), func.ST_Intersects(t.geom, Opportunity.prospect_geom)))
        clauses = [self._in_my_territories(Opportunity.customer_id), prospect_inside]
        if r == "sales_manager":
            clauses.append(Opportunity.created_by == self.user_id)
        return or_(*clauses)

    def order_filter(self) -> ColumnElement[bool]:
        if not self.can("order.read"):
            return false()
        pred = self.customer_filter(Order.customer_id)
        if self.role == "logistics":
            return and_(pred, Order.status.in_(("confirmed", "delivered")))
        return pred

    def service_record_filter(self) -> ColumnElement[bool]:
        r = self.role
        if not self.can("service.read"):
            return false()
        if r == "service_agent":
            return ServiceRecord.assignee_id == self.user_id
        return self.customer_filter(ServiceRecord.customer_id)

    def churn_alert_filter(self) -> ColumnElement[bool]:
        if not self.can("churn.read"):
            return false()
        return self.customer_filter(ChurnAlert.customer_id)

    def territory_filter(self) -> ColumnElement[bool]:
        """Territories: planners and top roles see all; territory roles see their own."""
        if self.role in ("admin", "executive", "sales_manager"):
            return true()
        if self.role == "regional_manager":
            return Territory.id.in_(self.territory_ids or (-1,))
        return true() if self.can("territory.read") else false()

    def visible_customer_ids(self):
        """A SELECT of visible customer ids (for joins in aggregates)."""
        return select(Customer.id).where(self.customer_filter())


def territory_ids_for(session, user_id: int) -> tuple[int, ...]:
    rows = session.execute(select(UserTerritory.territory_id).where(UserTerritory.user_id == user_id))
    return tuple(sorted(r[0] for r in rows))
