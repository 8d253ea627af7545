"""Sales orders and their lines.

Totals (EUR amount, EUR cost, vehicle load units) are computed here from the lines and
the catalogue prices; they are never taken from input. Status moves
draft → confirmed → delivered, and draft/confirmed → cancelled. Visibility is
`scope.order_filter()` only (logistics: confirmed/delivered orders of its branch area;
customer: its own)."""
from __future__ import annotations

import importlib
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from geoalchemy2.shape import to_shape
from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session, aliased

from geo_crm.models import Customer, Order, OrderLine, Product
from geo_crm.models.enums import ORDER_STATUSES
from geo_crm.errors import get_visible
from geo_crm.records.common import Forbidden, Invalid, Page, check_version, paginate, plain
from geo_crm.records.geo import feature, parse_point, shape_geojson, to_db
from geo_crm.security.scope import Scope

TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"confirmed", "cancelled"}),
    "confirmed": frozenset({"delivered", "cancelled"}),
    "delivered": frozenset(),
    "cancelled": frozenset(),
}
EDITABLE = frozenset({"draft", "confirmed"})
MAX_LINES = 200
CENT = Decimal("0.01")
assert set(TRANSITIONS) == set(ORDER_STATUSES)


def _money(v) -> Decimal:
    return Decimal(str(v)).quantize(CENT, rounding=ROUND_HALF_UP)


def _hide_cost(scope: Scope) -> bool:
    return scope.role == "customer"


def line_dict(ln: OrderLine, product: Product | None, scope: Scope) -> dict:
    d = {"id": ln.id, "product_id": ln.product_id, "sku": product.sku if product else None,
         "product_name": product.name if product else None, "quantity": ln.quantity,
         "unit_price": plain(ln.unit_price), "unit_cost": plain(ln.unit_cost), "amount": plain(ln.amount)}
    if _hide_cost(scope):
        d.pop("unit_cost")
    return d


def order_feature(session: Session, o: Order, scope: Scope, *, customer_name: str | None = None,
                  with_lines: bool = True) -> dict:
    props = {k: plain(getattr(o, k)) for k in ("number", "customer_id", "order_date", "delivery_date", "status",
                                                "delivery_address", "total_amount", "total_cost", "total_load",
                                                "notes", "created_by", "version", "created_at", "updated_at")}
    props["id"] = o.id
    props["customer_name"] = customer_name if customer_name is not None else \
        session.scalar(select(Customer.name).where(Customer.id == o.customer_id))
    props["allowed_transitions"] = sorted(TRANSITIONS[o.status]) if scope.can("order.write") else []
    if _hide_cost(scope):
        props.pop("total_cost")
    if with_lines:
        products = {p.id: p for p in session.scalars(
            select(Product).where(Product.id.in_([ln.product_id for ln in o.lines] or [-1])))}
        props["lines"] = [line_dict(ln, products.get(ln.product_id), scope) for ln in o.lines]
    geom = shape_geojson(to_shape(o.delivery_geom)) if o.delivery_geom is not None else None
    return feature(o.id, geom, props)


def visible_orders(scope: Scope):
    return select(Order).where(scope.order_filter())


def list_orders(session: Session, scope: Scope, *, status: list[str] | None = None, date_from: date | None = None,
                date_to: date | None = None, customer_id: int | None = None, q: str | None = None,
                limit: int = 50, offset: int = 0) -> Page:
    """Rows are (Order, customer name), newest first."""
    cust = aliased(Customer)   # not `Customer`: the Scope's EXISTS(customer ...) must stay uncorrelated
    stmt = (select(Order, cust.name).join(cust, cust.id == Order.customer_id)
            .where(scope.order_filter()).order_by(Order.order_date.desc(), Order.id.desc()))
    if status:
        bad = [s for s in status if s not in ORDER_STATUSES]
        if bad:
            raise Invalid("status", f"unknown status {bad[0]!r}; one of {', '.join(ORDER_STATUSES)}")
        stmt = stmt.where(Order.status.in_(status))
    if date_from and date_to and date_to < date_from:
        raise Invalid("date_to", "must not be before date_from")
    if date_from:
        stmt = stmt.where(Order.order_date >= date_from)
    if date_to:
        stmt = stmt.where(Order.order_date <= date_to)
    if customer_id is not None:
        stmt = stmt.where(Order.customer_id == customer_id)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(cust.name.ilike(like), cust.code.ilike(like), Order.number.ilike(like)))
    return paginate(session, stmt, limit, offset, scalars=False)


def get_order(session: Session, scope: Scope, order_id: int) -> Order:
    return get_visible(session, Order, order_id, scope.order_filter())


def _visible_customer(session: Session, scope: Scope, customer_id: Any) -> Customer:
    c = None
    if isinstance(customer_id, int):
        c = session.scalar(select(Customer).where(Customer.id == customer_id, scope.customer_filter()))
    if c is None:
        # the same answer for "does not exist" and "not yours": no leak
        raise Invalid("customer_id", "no such customer")
    return c


def _build_lines(session: Session, lines: Any) -> list[OrderLine]:
    if not isinstance(lines, list) or not lines:
        raise Invalid("lines", "an order needs at least one line")
    if len(lines) > MAX_LINES:
        raise Invalid("lines", f"at most {MAX_LINES} lines")
    wanted = {ln.get("product_id") for ln in lines if isinstance(ln, dict)}
    products = {p.id: p for p in session.scalars(
        select(Product).where(Product.id.in_([i for i in wanted if isinstance(i, int)] or [-1])))}
    out = []
    for i, ln in enumerate(lines):
        if not isinstance(ln, dict):
            raise Invalid(f"lines.{i}", "expected an object with product_id and quantity")
        p = products.get(ln.get("product_id"))
        if p is None:
            raise Invalid(f"lines.{i}.product_id", "no such product")
        if not p.active:
            raise Invalid(f"lines.{i}.product_id", "the product is no longer sold")
        qty = ln.get("quantity")
        if not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
            raise Invalid(f"lines.{i}.quantity", "must be a whole number greater than 0")
        if qty > 1_000_000:
            raise Invalid(f"lines.{i}.quantity", "too large")
        price, cost = _money(p.unit_price), _money(p.unit_cost)
        out.append(OrderLine(product_id=p.id, quantity=qty, unit_price=price, unit_cost=cost,
                             amount=_money(price * qty)))
    return out


def compute_totals(session: Session, o: Order) -> None:
    """total_amount / total_cost (EUR) and total_load (load units) from the lines."""
    loads = dict(session.execute(select(Product.id, Product.load_units)
                                 .where(Product.id.in_([ln.product_id for ln in o.lines] or [-1]))).all())
    o.total_amount = sum((_money(ln.amount) for ln in o.lines), Decimal("0.00"))
    o.total_cost = sum((_money(Decimal(str(ln.unit_cost)) * ln.quantity) for ln in o.lines), Decimal("0.00"))
    o.total_load = sum(ln.quantity * int(loads.get(ln.product_id) or 0) for ln in o.lines)


def _apply_common(o: Order, data: dict, customer: Customer | None) -> None:
    for k in ("delivery_date", "delivery_address", "notes"):
        if k in data and data[k] is not None:
            setattr(o, k, data[k])
    if "delivery_date" in data and data["delivery_date"] is None:
        o.delivery_date = None
    if data.get("delivery_geometry") is not None:
        o.delivery_geom = to_db(parse_point(data["delivery_geometry"], "delivery_geometry"))
    elif "delivery_geometry" in data and customer is not None:
        o.delivery_geom = customer.geom  # explicit null: back to the customer's location
    if o.delivery_date is not None and o.order_date is not None and o.delivery_date < o.order_date:
        raise Invalid("delivery_date", "must not be before order_date")


def _clear_churn(session: Session, customer_id: int) -> bool:
    """A new order ends the customer's open churn warning (owned by geo_crm.churn)."""
    try:
        mod = importlib.import_module("geo_crm.churn.service")
    except ModuleNotFoundError:
        return False
    fn = getattr(mod, "clear_on_order", None)
    if fn is None:
        return False
    fn(session, customer_id)
    return True


def create_order(session: Session, scope: Scope, data: dict, *, today: date | None = None) -> Order:
    if not scope.can("order.write"):
        raise Forbidden("order.write")
    customer = _visible_customer(session, scope, data.get("customer_id"))
    status = data.get("status") or "draft"
    if status not in ("draft", "confirmed"):
        raise Invalid("status", "a new order is 'draft' or 'confirmed'")
    number_id = session.scalar(text("SELECT nextval(pg_get_serial_sequence('sales_order', 'id'))"))
    o = Order(id=number_id, number=f"SO{number_id:08d}", customer_id=customer.id, status=status,
              order_date=data.get("order_date") or today or date.today(), created_by=scope.user_id,
              delivery_address=customer.address if not customer.city else f"{customer.address}, {customer.city}",
              delivery_geom=customer.geom, notes="")
    _apply_common(o, data, customer)
    o.lines = _build_lines(session, data.get("lines"))
    compute_totals(session, o)
    session.add(o)
    session.flush()
    _clear_churn(session, customer.id)
    return o


def update_order(session: Session, scope: Scope, order_id: int, data: dict, expected_version: int | None) -> Order:
    o = get_order(session, scope, order_id)
    if not scope.can("order.write"):
        raise Forbidden("order.write")
    check_version(o.version, expected_version)
    if "customer_id" in data and data["customer_id"] != o.customer_id:
        raise Invalid("customer_id", "an order cannot move to another customer; cancel it and create a new one")
    changes_content = any(k in data for k in ("lines", "delivery_date", "delivery_address", "delivery_geometry",
                                              "order_date"))
    if changes_content and o.status not in EDITABLE:
        raise Invalid("status", f"a {o.status} order cannot be edited")
    if "order_date" in data and data["order_date"] is not None:
        o.order_date = data["order_date"]
    customer = session.get(Customer, o.customer_id)
    _apply_common(o, data, customer)
    if "lines" in data:
        o.lines = _build_lines(session, data["lines"])
        session.flush()
        compute_totals(session, o)
    new_status = data.get("status")
    if new_status and new_status != o.status:
        if new_status not in ORDER_STATUSES:
            raise Invalid("status", f"one of {', '.join(ORDER_STATUSES)}")
        if new_status not in TRANSITIONS[o.status]:
            raise Invalid("status", f"cannot go from {o.status} to {new_status}")
        o.status = new_status
    session.flush()
    return o


def delete_order(session: Session, scope: Scope, order_id: int, expected_version: int | None) -> None:
    """Only drafts are deleted; anything else is cancelled (history stays)."""
    o = get_order(session, scope, order_id)
    if not scope.can("order.write"):
        raise Forbidden("order.write")
    check_version(o.version, expected_version)
    if o.status != "draft":
        raise Invalid("status", "only draft orders can be deleted; cancel it instead")
    session.delete(o)
    session.flush()


def order_stats(session: Session, scope: Scope) -> dict:
    rows = session.execute(select(Order.status, func.count()).where(scope.order_filter()).group_by(Order.status))
    return {s: n for s, n in rows}
