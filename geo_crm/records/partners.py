"""Partners (distributors, resellers, suppliers): Point location, optional coverage
MultiPolygon, and regional coverage as a list of administrative regions."""
from __future__ import annotations

from geoalchemy2.shape import to_shape
from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from geo_crm.models import Partner, PartnerRegion, Region
from geo_crm.models.enums import CREDIT_RATINGS, PARTNER_TYPES
from geo_crm.records.branches import _check_code_free, _need
from geo_crm.records.common import Invalid, NotFound, Page, check_version, paginate, plain
from geo_crm.records.geo import feature, parse_area, parse_point, shape_geojson, to_db
from geo_crm.security.scope import Scope

PARTNER_FIELDS = ("code", "name", "partner_type", "credit_level", "address", "postcode", "city", "phone",
                  "email", "notes", "commission_pct")


def region_ids_of(session: Session, partner_id: int) -> list[int]:
    return list(session.scalars(select(PartnerRegion.region_id).where(PartnerRegion.partner_id == partner_id)
                                .order_by(PartnerRegion.region_id)))


def partner_feature(session: Session, p: Partner, *, with_area: bool = True) -> dict:
    props = {k: plain(getattr(p, k)) for k in PARTNER_FIELDS}
    props.update(id=p.id, version=p.version, created_at=plain(p.created_at), updated_at=plain(p.updated_at),
                 region_ids=region_ids_of(session, p.id))
    if with_area:
        props["coverage"] = shape_geojson(to_shape(p.coverage)) if p.coverage is not None else None
    return feature(p.id, shape_geojson(to_shape(p.geom)), props)


def list_partners(session: Session, scope: Scope, *, q: str | None = None, partner_type: str | None = None,
                  region_id: int | None = None, limit: int = 100, offset: int = 0) -> Page:
    _need(scope, "partner.read")
    stmt = select(Partner).order_by(Partner.name, Partner.id)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(Partner.name.ilike(like), Partner.code.ilike(like), Partner.city.ilike(like)))
    if partner_type:
        stmt = stmt.where(Partner.partner_type == partner_type)
    if region_id is not None:
        stmt = stmt.where(Partner.id.in_(select(PartnerRegion.partner_id).where(PartnerRegion.region_id == region_id)))
    return paginate(session, stmt, limit, offset)


def get_partner(session: Session, scope: Scope, partner_id: int) -> Partner:
    if not scope.can("partner.read"):
        raise NotFound()
    p = session.get(Partner, partner_id)
    if p is None:
        raise NotFound()
    return p


def _apply(session: Session, p: Partner, data: dict) -> None:
    for k in PARTNER_FIELDS:
        if k in data:
            setattr(p, k, data[k])
    if p.partner_type not in PARTNER_TYPES:
        raise Invalid("partner_type", f"one of {', '.join(PARTNER_TYPES)}")
    if p.credit_level not in CREDIT_RATINGS:
        raise Invalid("credit_level", f"one of {', '.join(CREDIT_RATINGS)}")
    if p.commission_pct is not None and not (0 <= float(p.commission_pct) <= 100):
        raise Invalid("commission_pct", "must be between 0 and 100")
    if "geometry" in data:
        if data["geometry"] is None:
            raise Invalid("geometry", "a partner needs a location")
        p.geom = to_db(parse_point(data["geometry"], "geometry"))
    if "coverage" in data:
        p.coverage = None if data["coverage"] is None else to_db(parse_area(data["coverage"], "coverage"))


def _set_regions(session: Session, p: Partner, region_ids: list[int]) -> None:
    ids = sorted(set(region_ids))
    if ids:
        known = set(session.scalars(select(Region.id).where(Region.id.in_(ids))))
        missing = [i for i in ids if i not in known]
        if missing:
            raise Invalid("region_ids", f"unknown region ids: {missing}")
    session.execute(delete(PartnerRegion).where(PartnerRegion.partner_id == p.id))
    session.add_all(PartnerRegion(partner_id=p.id, region_id=i) for i in ids)


def create_partner(session: Session, scope: Scope, data: dict) -> Partner:
    _need(scope, "partner.write")
    for f in ("code", "name", "partner_type", "geometry"):
        if not data.get(f):
            raise Invalid(f, "required")
    _check_code_free(session, Partner, data["code"], None)
    p = Partner(credit_level="A", commission_pct=0)
    _apply(session, p, data)
    session.add(p)
    session.flush()
    if data.get("region_ids") is not None:
        _set_regions(session, p, data["region_ids"])
    session.flush()
    return p


def update_partner(session: Session, scope: Scope, partner_id: int, data: dict, expected_version: int | None) -> Partner:
    p = get_partner(session, scope, partner_id)
    _need(scope, "partner.write")
    check_version(p.version, expected_version)
    if "code" in data:
        _check_code_free(session, Partner, data["code"], p.id)
    _apply(session, p, data)
    if "region_ids" in data:
        _set_regions(session, p, data["region_ids"] or [])
        p.updated_at = func.now()   # coverage is part of the record: bump its version
    session.flush()
    return p


def delete_partner(session: Session, scope: Scope, partner_id: int, expected_version: int | None) -> None:
    p = get_partner(session, scope, partner_id)
    _need(scope, "partner.write")
    check_version(p.version, expected_version)
    session.delete(p)
    session.flush()
