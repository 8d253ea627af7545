"""The product catalogue: prices and costs in EUR, load units per item (vehicle capacity)."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from geo_crm.models import OrderLine, Product
from geo_crm.records.branches import _need
from geo_crm.records.common import Invalid, NotFound, Page, check_version, paginate, plain
from geo_crm.security.scope import Scope

PRODUCT_FIELDS = ("sku", "name", "category", "unit", "unit_price", "unit_cost", "load_units", "active")


def product_dict(p: Product, scope: Scope | None = None) -> dict:
    d = {"id": p.id, "version": p.version, **{k: plain(getattr(p, k)) for k in PRODUCT_FIELDS}}
    if scope is not None and scope.role == "customer":
        d.pop("unit_cost")  # the company's cost is not for customers' eyes
    return d


def list_products(session: Session, scope: Scope, *, q: str | None = None, category: str | None = None,
                  active: bool | None = None, limit: int = 100, offset: int = 0) -> Page:
    _need(scope, "product.read")
    stmt = select(Product).order_by(Product.name, Product.id)
    if scope.role == "customer":
        active = True
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(Product.name.ilike(like), Product.sku.ilike(like)))
    if category:
        stmt = stmt.where(Product.category == category)
    if active is not None:
        stmt = stmt.where(Product.active.is_(active))
    return paginate(session, stmt, limit, offset)


def get_product(session: Session, scope: Scope, product_id: int) -> Product:
    if not scope.can("product.read"):
        raise NotFound()
    p = session.get(Product, product_id)
    if p is None or (scope.role == "customer" and not p.active):
        raise NotFound()
    return p


def _apply(p: Product, data: dict) -> None:
    for k in PRODUCT_FIELDS:
        if k in data:
            setattr(p, k, data[k])
    for k in ("unit_price", "unit_cost"):
        if getattr(p, k) is None or Decimal(str(getattr(p, k))) < 0:
            raise Invalid(k, "must be zero or more")
    if p.load_units is None or p.load_units < 0:
        raise Invalid("load_units", "must be zero or more")
    if not (p.name or "").strip():
        raise Invalid("name", "required")


def create_product(session: Session, scope: Scope, data: dict) -> Product:
    _need(scope, "product.write")
    for f in ("sku", "name"):
        if not data.get(f):
            raise Invalid(f, "required")
    if session.scalar(select(Product.id).where(Product.sku == data["sku"])):
        raise Invalid("sku", "already used by another product")
    p = Product(category="", unit="pcs", load_units=1, active=True)
    _apply(p, data)
    session.add(p)
    session.flush()
    return p


def update_product(session: Session, scope: Scope, product_id: int, data: dict, expected_version: int | None) -> Product:
    p = get_product(session, scope, product_id)
    _need(scope, "product.write")
    check_version(p.version, expected_version)
    if "sku" in data:
        other = session.scalar(select(Product.id).where(Product.sku == data["sku"]))
        if other is not None and other != p.id:
            raise Invalid("sku", "already used by another product")
    _apply(p, data)
    session.flush()
    return p


def delete_product(session: Session, scope: Scope, product_id: int, expected_version: int | None) -> None:
    """Products already on orders are deactivated instead (order history must stay intact)."""
    p = get_product(session, scope, product_id)
    _need(scope, "product.write")
    check_version(p.version, expected_version)
    if session.scalar(select(OrderLine.id).where(OrderLine.product_id == p.id).limit(1)):
        raise Invalid("id", "the product is on orders; deactivate it instead (active=false)")
    session.delete(p)
    session.flush()
