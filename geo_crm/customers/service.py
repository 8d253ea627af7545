"""Customers and contacts: list, read, write, with visibility from the Scope.

Every function takes `(session, scope, ...)` and knows nothing of HTTP. Records the
caller may not see raise `NotFound` (never a "forbidden": existence is not revealed);
verbs the caller may not do on a record they *can* see raise `Forbidden`; stale
versions raise `Conflict`; bad input raises `FilterError(field, problem)`.

Geometry is EPSG:4326; distances are metres on the WGS84 spheroid.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal
from typing import Any, Iterator, Literal

from geoalchemy2.shape import to_shape
from sqlalchemy import Select, case, delete as sql_delete, func, literal, or_, select, tuple_, update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from geo_crm.customers import filters as cf
from geo_crm.customers.filters import CustomerFilter, FilterError
from geo_crm.customers.schemas import ContactCreate, ContactFields, CustomerCreate, CustomerFields
from geo_crm.cursors import decode_cursor, encode_cursor
from geo_crm.errors import Conflict, Forbidden, NotFound, get_visible
from geo_crm.models import Contact, Customer, Dictionary, User
from geo_crm.models.enums import CUSTOMER_LEVELS
from geo_crm.security.scope import Scope

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
SortKey = Literal["name", "code", "created_at", "level", "distance"]
SORT_KEYS: tuple[str, ...] = SortKey.__args__

# output order of customer fields (GeoJSON properties, CSV columns, detail pages)
CUSTOMER_FIELDS: tuple[str, ...] = (
    "id", "code", "name", "kind", "industry", "level", "status", "credit_rating", "satisfaction",
    "employees", "annual_revenue_eur", "address", "postcode", "city", "country", "phone", "email",
    "website", "notes", "owner_id", "lon", "lat", "geocode_quality", "delivery_start", "delivery_end",
    "service_min", "delivery_notes", "region_id", "service_branch_id", "version", "created_at",
    "updated_at")
NULLABLE = frozenset({"industry", "credit_rating", "employees", "annual_revenue_eur", "owner_id",
                      "delivery_start", "delivery_end"})
# filter parameter -> customer field it reveals (a role may only filter on fields it can read)
FILTER_FIELDS = {"level": "level", "status": "status", "industry": "industry", "owner_id": "owner_id",
                 "region_id": "region_id", "branch_id": "service_branch_id"}
SORT_FIELDS = {"name": "name", "code": "code", "created_at": "created_at", "level": "level",
               "distance": "geom"}
STAFF_OWNER_ROLES = ("admin", "sales_manager", "account_manager", "regional_manager")


# ------------------------------------------------------------------ reading
def visible_fields(scope: Scope) -> tuple[str, ...]:
    allowed = scope.customer_fields
    if allowed is None:
        return CUSTOMER_FIELDS
    return tuple(f for f in CUSTOMER_FIELDS if f in allowed)


def _plain(v: Any) -> Any:
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, time):
        return v.strftime("%H:%M")
    if isinstance(v, datetime):
        return v.isoformat()
    return v


def lonlat(c: Customer) -> tuple[float, float] | None:
    if c.geom is None:
        return None
    p = to_shape(c.geom)
    return p.x, p.y


def serialize(c: Customer, scope: Scope, *, distance: float | None = None) -> dict[str, Any]:
    """The customer as plain JSON-able data, without fields the caller may not read."""
    ll = lonlat(c)
    out: dict[str, Any] = {}
    for name in visible_fields(scope):
        if name == "lon":
            out[name] = ll[0] if ll else None
        elif name == "lat":
            out[name] = ll[1] if ll else None
        else:
            out[name] = _plain(getattr(c, name))
    if distance is not None:
        out["distance_m"] = round(float(distance), 3)
    return out


def feature(c: Customer, scope: Scope, *, distance: float | None = None) -> dict[str, Any]:
    """A GeoJSON Feature (RFC 7946); `geometry` is null for a customer with no location."""
    props = serialize(c, scope, distance=distance)
    lon, lat = props.get("lon"), props.get("lat")
    geom = {"type": "Point", "coordinates": [lon, lat]} if lon is not None and lat is not None else None
    return {"type": "Feature", "id": c.id, "geometry": geom, "properties": props}


def check_filter_fields(f: CustomerFilter, scope: Scope, sort: str | None = None) -> None:
    """A role with field-level restriction may not filter or sort on fields it cannot read
    (that would reveal them)."""
    allowed = scope.customer_fields
    if allowed is None:
        return
    for param, fld in FILTER_FIELDS.items():
        if getattr(f, param) not in (None, []) and fld not in allowed:
            raise FilterError(param, "this filter is not available for your role")
    if sort and SORT_FIELDS.get(sort, sort) not in allowed:
        raise FilterError("sort", "this sort key is not available for your role")


LEVEL_RANK = case({lv: i for i, lv in enumerate(CUSTOMER_LEVELS)}, value=Customer.level, else_=99)


def _sort_expr(sort: str, near: tuple[float, float] | None):
    if sort == "name":
        return Customer.name
    if sort == "code":
        return Customer.code
    if sort == "created_at":
        return Customer.created_at
    if sort == "level":
        return LEVEL_RANK
    if sort == "distance":
        if near is None:
            raise FilterError("sort", "sort=distance needs near and radius_m")
        return cf.distance_m(Customer.geom, *near)
    raise FilterError("sort", f"unknown sort key {sort!r}")


@dataclass
class Page:
    rows: list[tuple[Customer, float | None]]
    total: int | None
    next_cursor: str | None
    sort: str
    order: str
    offset: int | None = None
    limit: int = DEFAULT_LIMIT
    fields: tuple[str, ...] = field(default_factory=tuple)


def filter_fingerprint(f: CustomerFilter) -> str:
    raw = json.dumps(f.model_dump(exclude_none=True), sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def _encode_key(v: Any) -> Any:
    return {"dt": v.isoformat()} if isinstance(v, datetime) else v


def _decode_key(v: Any, sort: str) -> Any:
    if sort == "created_at":
        if not isinstance(v, dict) or "dt" not in v:
            raise FilterError("cursor", "invalid cursor")
        try:
            return datetime.fromisoformat(v["dt"])
        except (TypeError, ValueError):
            raise FilterError("cursor", "invalid cursor")
    if sort in ("name", "code") and not isinstance(v, str):
        raise FilterError("cursor", "invalid cursor")
    if sort in ("level", "distance") and (isinstance(v, bool) or not isinstance(v, (int, float))):
        raise FilterError("cursor", "invalid cursor")
    return v


def base_query(f: CustomerFilter | None, scope: Scope) -> Select:
    return cf.apply(select(Customer), f, scope)


def count(session: Session, scope: Scope, f: CustomerFilter | None) -> int:
    stmt = cf.apply(select(func.count()).select_from(Customer), f, scope)
    return session.scalar(stmt) or 0


def list_customers(session: Session, scope: Scope, f: CustomerFilter, *, sort: str | None = None,
                   order: str = "asc", limit: int = DEFAULT_LIMIT, offset: int | None = None,
                   cursor: dict | None = None, with_total: bool = True) -> Page:
    """One page of visible customers matching `f`.

    Sorted by `sort` (default: distance when `near` is given, else name), ties by id.
    Paging is by `cursor` (keyset; a dict decoded by the delivery layer) or `offset`.
    `total` counts every visible match of the same filters.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise FilterError("limit", f"must be between 1 and {MAX_LIMIT}")
    if order not in ("asc", "desc"):
        raise FilterError("order", "must be asc or desc")
    if cursor and offset:
        raise FilterError("cursor", "use either cursor or offset, not both")
    near = f.near_point
    sort = sort or ("distance" if near else "name")
    check_filter_fields(f, scope, sort)
    key = _sort_expr(sort, near)
    dist = cf.distance_m(Customer.geom, *near) if near else None
    cols = [Customer, dist.label("distance_m")] if dist is not None else [Customer]
    stmt = cf.apply(select(*cols), f, scope)
    if cursor:
        if cursor.get("s") != sort or cursor.get("o") != order or cursor.get("f") != filter_fingerprint(f):
            raise FilterError("cursor", "the cursor belongs to a different query (filters, sort or order)")
        k, last_id = _decode_key(cursor.get("k"), sort), cursor.get("i")
        if not isinstance(last_id, int):
            raise FilterError("cursor", "invalid cursor")
        cmp = tuple_(key, Customer.id) > tuple_(literal(k), literal(last_id)) if order == "asc" \
            else tuple_(key, Customer.id) < tuple_(literal(k), literal(last_id))
        stmt = stmt.where(cmp)
    if order == "asc":
        stmt = stmt.order_by(key.asc(), Customer.id.asc())
    else:
        stmt = stmt.order_by(key.desc(), Customer.id.desc())
    if offset:
        stmt = stmt.offset(offset)
    result = session.execute(stmt.limit(limit + 1)).all()
    rows = [(r[0], r[1] if dist is not None else None) for r in result[:limit]]
    next_cursor = None
    if len(result) > limit and rows:
        last, d = rows[-1]
        kv = {"name": last.name, "code": last.code, "created_at": last.created_at,
              "level": CUSTOMER_LEVELS.index(last.level) if last.level in CUSTOMER_LEVELS else 99,
              "distance": d}[sort]
        next_cursor = encode_cursor({"s": sort, "o": order, "f": filter_fingerprint(f),
                                     "k": _encode_key(kv), "i": last.id})
    total = count(session, scope, f) if with_total else None
    return Page(rows, total, next_cursor, sort, order, offset, limit, visible_fields(scope))


def iter_customers(session: Session, scope: Scope, f: CustomerFilter, *, sort: str | None = None,
                   order: str = "asc", batch: int = 1000) -> Iterator[tuple[Customer, float | None]]:
    """Every visible match, in keyset batches (for exports)."""
    cursor = None
    while True:
        page = list_customers(session, scope, f, sort=sort, order=order, limit=batch, cursor=cursor,
                              with_total=False)
        yield from page.rows
        for c, _d in page.rows:
            session.expunge(c)
        if not page.next_cursor:
            return
        cursor = decode_cursor(page.next_cursor)


def get_customer(session: Session, scope: Scope, customer_id: int, *, for_update: bool = False) -> Customer:
    """The customer, or NotFound when it does not exist *or* the caller may not see it."""
    if not scope.can("customer.read"):
        raise NotFound()
    return get_visible(session, Customer, customer_id, scope.customer_filter(), for_update=for_update)


def suggest(session: Session, scope: Scope, q: str, limit: int = 10) -> list[dict[str, Any]]:
    """Search-as-you-type: visible customers whose name/code/address/contact matches `q`;
    prefix matches on name or code first, then by trigram word similarity."""
    q = (q or "").strip()
    if not q:
        return []
    if len(q) > 200:
        raise FilterError("q", "at most 200 characters")
    limit = max(1, min(limit, 50))
    esc = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    prefix = or_(Customer.name.ilike(esc + "%"), Customer.code.ilike(esc + "%"))
    stmt = (select(Customer.id, Customer.code, Customer.name, Customer.city)
            .where(scope.customer_filter(), cf.text_match(q))
            .order_by(case((prefix, 0), else_=1), func.word_similarity(q, Customer.name).desc(),
                      Customer.name, Customer.id)
            .limit(limit))
    allowed = visible_fields(scope)
    out = []
    for r in session.execute(stmt):
        item = {"id": r.id, "code": r.code, "name": r.name}
        if "city" in allowed:
            item["city"] = r.city
        out.append(item)
    return out


# ------------------------------------------------------------------ writing
def _point_wkt(lon: float, lat: float) -> str:
    return f"SRID=4326;POINT({lon!r} {lat!r})"


def _check_industry(session: Session, code: str | None) -> None:
    if not code:
        return
    known = session.scalars(select(Dictionary.code).where(Dictionary.kind == "industry")).all()
    if known and code not in known:
        raise FilterError("industry", "unknown industry (see the 'industry' dictionary)")


def _check_owner(session: Session, owner_id: int | None) -> None:
    if owner_id is None:
        return
    u = session.get(User, owner_id)
    if u is None or not u.is_active or u.role not in STAFF_OWNER_ROLES:
        raise FilterError("owner_id", "not an active staff user who can own customers")


def _apply_fields(session: Session, c: Customer, changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        if value is None and name not in NULLABLE:
            if name in ("code", "name", "kind", "level", "status", "service_min"):
                raise FilterError(name, "must not be null")
            value = ""
        if name == "industry":
            _check_industry(session, value)
        if name == "owner_id":
            _check_owner(session, value)
        setattr(c, name, value)
    if c.delivery_start and c.delivery_end and c.delivery_end <= c.delivery_start:
        raise FilterError("delivery_end", "must be later than delivery_start")


def _apply_location(c: Customer, data: CustomerFields) -> None:
    if not data.location_given():
        if "geocode_quality" in data.model_fields_set and data.geocode_quality:
            if c.geom is None:
                raise FilterError("geocode_quality", "set a location first")
            c.geocode_quality = data.geocode_quality
        return
    loc = data.location()
    if loc is None:
        c.geom = None
        c.geocode_quality = "none"
    else:
        c.geom = _point_wkt(*loc)
        c.geocode_quality = data.geocode_quality or "manual"


def _flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError:
        session.rollback()
        raise Conflict("the record was changed by someone else; reload and retry")
    except IntegrityError as e:
        session.rollback()
        msg = str(e.orig)
        if "uq_customer_code" in msg or "customer_code" in msg and "unique" in msg.lower():
            raise FilterError("code", "another customer already has this code")
        if "name_not_blank" in msg:
            raise FilterError("name", "must not be blank")
        if "delivery_window_order" in msg:
            raise FilterError("delivery_end", "must be later than delivery_start")
        raise FilterError("body", "the data breaks a database rule")


def _check_version(c, expected: int | None) -> None:
    if expected is not None and expected != c.version:
        raise Conflict(f"version mismatch: you have {expected}, the record is at {c.version}")


def create_customer(session: Session, scope: Scope, data: CustomerCreate) -> Customer:
    """A new customer. An account manager becomes its owner unless they may reassign."""
    if not scope.can("customer.create"):
        raise Forbidden("customer.create")
    changes = data.changes()
    if "owner_id" in changes and not scope.can("customer.reassign") and changes["owner_id"] != scope.user_id:
        raise Forbidden("customer.reassign")
    if scope.role == "account_manager":
        changes["owner_id"] = scope.user_id
    c = Customer(geocode_quality="none")
    _apply_fields(session, c, changes)
    _apply_location(c, data)
    session.add(c)
    _flush(session)
    session.refresh(c)
    return c


def update_customer(session: Session, scope: Scope, customer_id: int, data: CustomerFields, *,
                    expected_version: int | None = None, replace: bool = False) -> Customer:
    """Change a visible customer. `expected_version` (If-Match or body `version`) guards
    against lost updates. A 'customer' login may only correct its own location."""
    c = get_customer(session, scope, customer_id, for_update=True)
    expected = expected_version if expected_version is not None else data.version
    if expected_version is not None and data.version is not None and data.version != expected_version:
        raise FilterError("version", "differs from If-Match")
    changes = data.changes()
    if scope.can("customer.update"):
        if "owner_id" in changes and changes["owner_id"] != c.owner_id and not scope.can("customer.reassign"):
            raise Forbidden("customer.reassign")
    elif scope.can("customer.relocate_own") and c.id == scope.customer_id:
        if changes or replace:
            raise Forbidden("customer.update")
        if not data.location_given():
            raise FilterError("geometry", "give the corrected location")
        if data.location() is None:
            raise FilterError("geometry", "you may correct the location but not remove it")
        data = data.model_copy(update={"geocode_quality": "manual"})
    else:
        raise Forbidden("customer.update")
    _check_version(c, expected)
    if replace:
        defaults = {k: None for k in CustomerFields.model_fields
                    if k not in ("geometry", "lon", "lat", "geocode_quality", "version")}
        defaults.update(kind="company", level="ordinary", status="active", country="FI", service_min=10)
        if not scope.can("customer.reassign"):
            defaults.pop("owner_id")
        changes = {**defaults, **changes}
        if "geometry" not in data.model_fields_set and "lon" not in data.model_fields_set:
            data = data.model_copy(update={"geometry": None})
            data.model_fields_set.add("geometry")
    _apply_fields(session, c, changes)
    _apply_location(c, data)
    _flush(session)
    session.refresh(c)
    return c


def reassign_owner(session: Session, scope: Scope, customer_id: int, owner_id: int | None, *,
                   expected_version: int | None = None) -> Customer:
    c = get_customer(session, scope, customer_id, for_update=True)
    if not scope.can("customer.reassign"):
        raise Forbidden("customer.reassign")
    _check_version(c, expected_version)
    _check_owner(session, owner_id)
    c.owner_id = owner_id
    _flush(session)
    session.refresh(c)
    return c


def delete_customer(session: Session, scope: Scope, customer_id: int, *, expected_version: int | None = None) -> None:
    c = get_customer(session, scope, customer_id, for_update=True)
    if not scope.can("customer.delete"):
        raise Forbidden("customer.delete")
    _check_version(c, expected_version)
    # app_user.customer_id cascades: a customer's login goes with it
    session.delete(c)
    _flush(session)


# ------------------------------------------------------------------ contacts
CONTACT_FIELDS = ("id", "customer_id", "name", "gender", "title", "office_phone", "mobile_phone", "email",
                  "is_primary", "notes", "version", "created_at", "updated_at")


def serialize_contact(k: Contact) -> dict[str, Any]:
    return {f: _plain(getattr(k, f)) for f in CONTACT_FIELDS}


def list_contacts(session: Session, scope: Scope, customer_id: int) -> list[Contact]:
    get_customer(session, scope, customer_id)
    return list(session.scalars(select(Contact).where(Contact.customer_id == customer_id)
                                .order_by(Contact.is_primary.desc(), Contact.name, Contact.id)))


def get_contact(session: Session, scope: Scope, contact_id: int, *, for_update: bool = False) -> Contact:
    """The contact, or NotFound when it does not exist or its customer is not visible."""
    if not scope.can("customer.read"):
        raise NotFound()
    return get_visible(session, Contact, contact_id, scope.contact_filter(), for_update=for_update)


def _contact_changes(session: Session, k: Contact, changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        if value is None:
            if name == "name":
                raise FilterError("name", "must not be null")
            value = {"gender": "unknown", "is_primary": False}.get(name, "")
        setattr(k, name, value)
    if k.is_primary and k.customer_id is not None:
        _flush(session)  # k needs its id
        session.execute(sql_update(Contact).where(Contact.customer_id == k.customer_id, Contact.id != k.id,
                                                  Contact.is_primary.is_(True))
                        .values(is_primary=False, version=Contact.version + 1))


def create_contact(session: Session, scope: Scope, customer_id: int, data: ContactCreate) -> Contact:
    c = get_customer(session, scope, customer_id)
    if not scope.can("contact.write"):
        raise Forbidden("contact.write")
    k = Contact(customer_id=c.id)
    session.add(k)
    _contact_changes(session, k, {"is_primary": False, **data.changes()})
    _flush(session)
    session.refresh(k)
    return k


def update_contact(session: Session, scope: Scope, contact_id: int, data: ContactFields, *,
                   expected_version: int | None = None) -> Contact:
    k = get_contact(session, scope, contact_id, for_update=True)
    if not scope.can("contact.write"):
        raise Forbidden("contact.write")
    _check_version(k, expected_version if expected_version is not None else data.version)
    _contact_changes(session, k, data.changes())
    _flush(session)
    session.refresh(k)
    return k


def delete_contact(session: Session, scope: Scope, contact_id: int, *, expected_version: int | None = None) -> None:
    k = get_contact(session, scope, contact_id, for_update=True)
    if not scope.can("contact.write"):
        raise Forbidden("contact.write")
    _check_version(k, expected_version)
    session.execute(sql_delete(Contact).where(Contact.id == k.id))
    session.expunge(k)
