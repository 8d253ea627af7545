"""Customer pages: list with filters, detail (contacts, orders, opportunities, service,
churn, areas, map), create/edit forms with map-click location picking, contacts.

Input rules are the pydantic models in geo_crm.customers.schemas (the same as the
API); the WTForms forms here render fields and carry the CSRF token, and pydantic
errors are shown next to the field they name.
"""
from __future__ import annotations

from math import ceil
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from pydantic import ValidationError
from sqlalchemy import select
from wtforms import BooleanField, HiddenField, SelectField, StringField, TextAreaField

from geo_crm.customers import service as svc
from geo_crm.customers.filters import CustomerFilter, FilterError
from geo_crm.customers.schemas import ContactCreate, ContactFields, CustomerCreate, CustomerFields
from geo_crm.http import Conflict, Forbidden, csp_nonce, current_scope, db, login_required, read_db
from geo_crm.models import (Branch, ChurnAlert, CustomerTerritory, Dictionary, Opportunity, Order, Region,
                            ServiceRecord, Territory, User)
from geo_crm.models.enums import (CREDIT_RATINGS, CUSTOMER_KINDS, CUSTOMER_LEVELS, CUSTOMER_STATUSES, GENDERS,
                                  GEOCODE_QUALITIES)

bp = Blueprint("customers", __name__)

PAGE_SIZES = (25, 50, 100, 250)
# A re-rendered form (with the user's input and the messages) is a normal page for the
# browser: 200, so that browsers and their consoles do not treat it as a failed load.
# The JSON API answers 422 / 409 / 412 for the same situations.
FORM_INVALID = 200
FORM_CONFLICT = 200
LIST_COLUMNS = [("code", _l("Code"), "code"), ("name", _l("Name"), "name"), ("level", _l("Level"), "level"),
                ("status", _l("Status"), None), ("industry", _l("Industry"), None), ("city", _l("City"), None),
                ("phone", _l("Phone"), None), ("created_at", _l("Created"), "created_at")]
FILTER_KEYS = ("q", "level", "status", "industry", "owner_id", "region_id", "territory_id", "branch_id", "bbox",
               "near", "radius_m", "within")


def _choices(values, blank: str | None = ""):
    out = [(v, v.replace("_", " ")) for v in values]
    return ([("", blank)] if blank is not None else []) + out


# -- forms --------------------------------------------------------------------------------
class CustomerForm(FlaskForm):
    """Rendering and CSRF only: values are checked by schemas.CustomerCreate."""
    code = StringField(_l("Code"))
    name = StringField(_l("Name"))
    kind = SelectField(_l("Kind"), choices=_choices(CUSTOMER_KINDS, None))
    industry = SelectField(_l("Industry"), choices=[], validate_choice=False)
    level = SelectField(_l("Level"), choices=_choices(CUSTOMER_LEVELS, None))
    status = SelectField(_l("Status"), choices=_choices(CUSTOMER_STATUSES, None))
    credit_rating = SelectField(_l("Credit rating"), choices=_choices(CREDIT_RATINGS), validate_choice=False)
    employees = StringField(_l("Employees"))
    annual_revenue_eur = StringField(_l("Annual revenue (EUR)"))
    address = StringField(_l("Address"))
    postcode = StringField(_l("Postcode"))
    city = StringField(_l("City"))
    country = StringField(_l("Country (ISO code)"))
    phone = StringField(_l("Phone"))
    email = StringField(_l("E-mail"))
    website = StringField(_l("Website"))
    notes = TextAreaField(_l("Notes"))
    owner_id = SelectField(_l("Owner"), choices=[], validate_choice=False)
    lon = StringField(_l("Longitude"))
    lat = StringField(_l("Latitude"))
    geocode_quality = SelectField(_l("Location quality"), validate_choice=False,
                                  choices=_choices([q for q in GEOCODE_QUALITIES if q != "none"]))
    delivery_start = StringField(_l("Delivery from (HH:MM)"))
    delivery_end = StringField(_l("Delivery until (HH:MM)"))
    service_min = StringField(_l("Minutes on site"))
    delivery_notes = TextAreaField(_l("Delivery notes"))
    version = HiddenField()


class LocationForm(FlaskForm):
    """A customer login corrects its own location."""
    lon = StringField(_l("Longitude"))
    lat = StringField(_l("Latitude"))
    version = HiddenField()


class ContactForm(FlaskForm):
    name = StringField(_l("Name"))
    title = StringField(_l("Title"))
    gender = SelectField(_l("Gender"), choices=_choices(GENDERS, None), default="unknown")
    office_phone = StringField(_l("Office phone"))
    mobile_phone = StringField(_l("Mobile phone"))
    email = StringField(_l("E-mail"))
    is_primary = BooleanField(_l("Primary contact"))
    notes = TextAreaField(_l("Notes"))
    version = HiddenField()


class DeleteForm(FlaskForm):
    version = HiddenField()


TEXT_FIELDS = ("code", "name", "address", "postcode", "city", "country", "phone", "email", "website", "notes",
               "delivery_notes")
OPTIONAL_FIELDS = ("industry", "credit_rating", "employees", "annual_revenue_eur", "delivery_start",
                   "delivery_end", "owner_id")


def _errors_to_form(form: FlaskForm, err: ValidationError | FilterError) -> list[str]:
    """Attach errors to the fields they name; return messages that name no form field."""
    loose = []
    items = ([(err.field, err.problem)] if isinstance(err, FilterError) else
             [(".".join(str(p) for p in d["loc"]), d["msg"].removeprefix("Value error, "))
              for d in err.errors(include_url=False, include_input=False)])
    for loc, msg in items:
        name = loc.split(".")[0] if loc else ""
        if name == "geometry":
            name = "lon"
        if not name and "delivery_end" in msg:
            name = "delivery_end"
        if not name and "lon and lat" in msg:
            name = "lat"
        fld = getattr(form, name, None) if name else None
        if fld is not None and hasattr(fld, "errors"):
            fld.errors = list(fld.errors or []) + [msg]
        else:
            loose.append(f"{loc}: {msg}" if loc else msg)
    return loose


def _form_data(form: CustomerForm, c=None, *, allow_owner: bool) -> dict[str, Any]:
    """Form values as the schema's input. Blank optional fields become null; the location
    is sent only when it changed (so an untouched location keeps its quality)."""
    data: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        data[name] = (getattr(form, name).data or "").strip()
    for name in ("kind", "level", "status"):
        data[name] = getattr(form, name).data
    for name in OPTIONAL_FIELDS:
        if name == "owner_id" and not allow_owner:
            continue
        v = (getattr(form, name).data or "").strip() if isinstance(getattr(form, name).data, str) \
            else getattr(form, name).data
        data[name] = v if v not in ("", None) else None
    sm = (form.service_min.data or "").strip()
    if sm:
        data["service_min"] = sm
    lon, lat = (form.lon.data or "").strip(), (form.lat.data or "").strip()
    old = svc.lonlat(c) if c is not None else None
    new = (lon, lat) if lon or lat else None
    changed = True
    if c is not None:
        if old is None and new is None:
            changed = False
        elif old is not None and new is not None:
            try:
                changed = abs(float(lon) - old[0]) > 1e-9 or abs(float(lat) - old[1]) > 1e-9
            except ValueError:
                changed = True
    if changed:
        if new is None:
            data["geometry"] = None
        else:
            data["lon"] = lon or None
            data["lat"] = lat or None
    # a moved location is 'manual' unless the user deliberately picked another quality
    quality = form.geocode_quality.data or None
    stored = c.geocode_quality if c is not None else None
    if quality and quality != stored and (new is not None if changed else old is not None):
        data["geocode_quality"] = quality
    return data


def _fill_choices(form: CustomerForm, session, scope) -> None:
    inds = session.execute(select(Dictionary.code, Dictionary.label).where(
        Dictionary.kind == "industry", Dictionary.active.is_(True)).order_by(Dictionary.sort, Dictionary.label)).all()
    form.industry.choices = [("", "")] + [(r.code, r.label) for r in inds]
    if form.industry.data and form.industry.data not in {r.code for r in inds}:
        form.industry.choices.append((form.industry.data, form.industry.data))
    owners = session.execute(select(User.id, User.full_name, User.username).where(
        User.is_active.is_(True), User.role.in_(svc.STAFF_OWNER_ROLES)).order_by(User.full_name, User.username)).all()
    form.owner_id.choices = [("", _("(nobody)"))] + [(str(u.id), u.full_name or u.username) for u in owners]


def _fill_from(form: CustomerForm, c) -> None:
    for name in TEXT_FIELDS + ("kind", "level", "status", "industry", "credit_rating"):
        getattr(form, name).data = getattr(c, name) or ""
    for name in ("employees", "annual_revenue_eur", "service_min"):
        v = getattr(c, name)
        getattr(form, name).data = "" if v is None else str(v)
    form.owner_id.data = "" if c.owner_id is None else str(c.owner_id)
    form.delivery_start.data = c.delivery_start.strftime("%H:%M") if c.delivery_start else ""
    form.delivery_end.data = c.delivery_end.strftime("%H:%M") if c.delivery_end else ""
    ll = svc.lonlat(c)
    form.lon.data, form.lat.data = (f"{ll[0]:.6f}", f"{ll[1]:.6f}") if ll else ("", "")
    form.geocode_quality.data = c.geocode_quality if c.geocode_quality != "none" else ""
    form.version.data = str(c.version)


# -- maps ---------------------------------------------------------------------------------
def _map_parts(points: list[dict], *, center=None, zoom: int = 13):
    """A small Leaflet map with the given points (lon/lat EPSG:4326); center is (lat, lon)."""
    from maps import base_map, point_markers_layer, render_parts
    settings = current_app.config["GEO_CRM"]
    if center is None:
        center = (points[0]["lat"], points[0]["lon"]) if points else settings.map_center
        if not points:
            zoom = 6
    m = base_map(center, zoom, tile_url=settings.tile_url, tile_attribution=settings.tile_attribution)
    if points:
        point_markers_layer(points, name=_("Customer"), kind="customer",
                            fields=[("address", _("Address")), ("city", _("City"))], color="#d6336c").add_to(m)
    return render_parts(m, nonce=csp_nonce())


def _marker(c, fields) -> list[dict]:
    ll = svc.lonlat(c)
    if not ll:
        return []
    p = {"id": c.id, "name": c.name, "lon": ll[0], "lat": ll[1]}
    for f in ("address", "city"):
        if f in fields:
            p[f] = getattr(c, f)
    return [p]


# -- list -----------------------------------------------------------------------------------
def _filter_from_args(args) -> tuple[CustomerFilter | None, dict[str, str]]:
    raw: dict[str, Any] = {}
    for key in FILTER_KEYS:
        vals = [v for v in args.getlist(key) if v.strip()]
        if not vals:
            continue
        raw[key] = vals if key in ("level", "status", "industry") else vals[-1]
    errors: dict[str, str] = {}
    try:
        return CustomerFilter.model_validate(raw), errors
    except ValidationError as e:
        for d in e.errors(include_url=False, include_input=False):
            cause = (d.get("ctx") or {}).get("error")
            if isinstance(cause, FilterError):  # raised inside the filter's own checks
                errors[cause.field] = cause.problem
                continue
            loc = str(d["loc"][0]) if d["loc"] else "filters"
            errors[loc] = d["msg"].removeprefix("Value error, ")
        return None, errors


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    try:
        return max(lo, min(hi, int(request.args.get(name, default))))
    except ValueError:
        return default


@bp.get("/customers")
@login_required
def list_view():
    scope = current_scope()
    if not scope.can("customer.read"):
        raise Forbidden("customer.read")
    s = read_db()
    f, errors = _filter_from_args(request.args)
    sort = request.args.get("sort") or None
    if sort not in svc.SORT_KEYS:
        sort = None
    order = "desc" if request.args.get("order") == "desc" else "asc"
    per_page = _int_arg("per_page", 50, 1, 250)
    page_no = _int_arg("page", 1, 1, 100_000)
    page = None
    if f is not None:
        try:
            page = svc.list_customers(s, scope, f, sort=sort, order=order, limit=per_page,
                                      offset=(page_no - 1) * per_page)
        except FilterError as e:
            errors[e.field] = e.problem
    fields = svc.visible_fields(scope)
    columns = [col for col in LIST_COLUMNS if col[0] in fields]
    base_args = [(k, v) for k in FILTER_KEYS for v in request.args.getlist(k) if v.strip()]
    pages = max(1, ceil((page.total or 0) / per_page)) if page else 1

    def url_with(**over):
        keep = [(k, v) for k, v in base_args]
        params = {"sort": sort or "", "order": order, "per_page": per_page, "page": page_no}
        params.update(over)
        keep += [(k, v) for k, v in params.items() if v not in ("", None)]
        return url_for("customers.list_view") + "?" + urlencode(keep)

    export_url = None
    if scope.can("customer.export") and f is not None:
        export_url = "/api/v1/customers?" + urlencode(base_args + [("format", "csv")] +
                                                       ([("sort", sort)] if sort else []) + [("order", order)])
    restricted = scope.customer_fields
    show_filter = {k: restricted is None or svc.FILTER_FIELDS.get(k, k) in restricted
                   for k in ("level", "status", "industry", "owner_id", "region_id", "branch_id")}
    return render_template(
        "customers/list.html", page=page, errors=errors, columns=columns, sort=page.sort if page else sort,
        order=order, per_page=per_page, page_no=page_no, pages=pages, url_with=url_with, export_url=export_url,
        args=request.args, levels=CUSTOMER_LEVELS, statuses=CUSTOMER_STATUSES, page_sizes=PAGE_SIZES,
        regions=_regions(s), territories=_territories(s, scope), branches=_branches(s),
        industries=_industries(s), owners=_owners(s) if show_filter["owner_id"] else [], show_filter=show_filter, can_create=scope.can("customer.create"))


def _regions(s):
    return s.execute(select(Region.id, Region.name).where(Region.level == 1).order_by(Region.name)).all()


def _territories(s, scope):
    return s.execute(select(Territory.id, Territory.name).where(scope.territory_filter())
                     .order_by(Territory.name)).all()


def _branches(s):
    return s.execute(select(Branch.id, Branch.name).order_by(Branch.name)).all()


def _owners(s):
    return s.execute(select(User.id, User.full_name, User.username).where(
        User.is_active.is_(True), User.role.in_(svc.STAFF_OWNER_ROLES)).order_by(User.full_name, User.username)).all()


def _industries(s):
    return s.execute(select(Dictionary.code, Dictionary.label).where(Dictionary.kind == "industry")
                     .order_by(Dictionary.sort, Dictionary.label)).all()


# -- detail ---------------------------------------------------------------------------------
def _related(s, scope, c) -> dict[str, Any]:
    """Other features' records for this customer, each through its own Scope predicate."""
    out: dict[str, Any] = {}
    if scope.can("order.read"):
        out["orders"] = s.scalars(select(Order).where(Order.customer_id == c.id, scope.order_filter())
                                  .order_by(Order.order_date.desc(), Order.id.desc()).limit(10)).all()
    if scope.can("opportunity.read"):
        out["opportunities"] = s.scalars(select(Opportunity).where(Opportunity.customer_id == c.id,
                                                                   scope.opportunity_filter())
                                         .order_by(Opportunity.created_at.desc()).limit(10)).all()
    if scope.can("service.read"):
        out["service"] = s.scalars(select(ServiceRecord).where(ServiceRecord.customer_id == c.id,
                                                               scope.service_record_filter())
                                   .order_by(ServiceRecord.created_at.desc()).limit(10)).all()
    if scope.can("churn.read"):
        out["churn"] = s.scalars(select(ChurnAlert).where(ChurnAlert.customer_id == c.id, scope.churn_alert_filter())
                                 .order_by(ChurnAlert.detected_at.desc()).limit(5)).all()
    fields = svc.visible_fields(scope)
    if c.region_id and "region_id" in fields:
        out["region"] = s.get(Region, c.region_id)
    if c.service_branch_id and "service_branch_id" in fields:
        out["branch"] = s.get(Branch, c.service_branch_id)
    if scope.can("territory.read"):
        out["territories"] = s.execute(
            select(Territory.id, Territory.name).join(CustomerTerritory, CustomerTerritory.territory_id == Territory.id)
            .where(CustomerTerritory.customer_id == c.id, scope.territory_filter()).order_by(Territory.name)).all()
    if c.owner_id and "owner_id" in fields:
        out["owner"] = s.get(User, c.owner_id)
    return out


@bp.get("/customers/<int:customer_id>")
@login_required
def detail(customer_id: int):
    scope = current_scope()
    s = db()
    c = svc.get_customer(s, scope, customer_id)
    fields = svc.visible_fields(scope)
    data = svc.serialize(c, scope)
    contacts = svc.list_contacts(s, scope, c.id)
    parts = _map_parts(_marker(c, fields), zoom=14)
    can_edit = scope.can("customer.update") or (scope.can("customer.relocate_own") and c.id == scope.customer_id)
    return render_template("customers/detail.html", c=c, data=data, fields=fields, contacts=contacts,
                           related=_related(s, scope, c), map=parts, can_edit=can_edit,
                           can_delete=scope.can("customer.delete"), can_contacts=scope.can("contact.write"),
                           contact_form=ContactForm(formdata=None), delete_form=DeleteForm(formdata=None))


# -- create / edit ----------------------------------------------------------------------------
def _render_form(form, c, *, loose=(), conflict=None, status=200):
    ll = svc.lonlat(c) if c is not None else None
    try:
        pick = (float(form.lon.data), float(form.lat.data))
    except (TypeError, ValueError):
        pick = ll
    center = (pick[1], pick[0]) if pick else None
    marker = [{"id": c.id if c else 0, "name": c.name if c else _("New customer"), "lon": ll[0], "lat": ll[1]}] if ll else []
    parts = _map_parts(marker, center=center, zoom=14 if pick else 6)
    return render_template("customers/form.html", form=form, c=c, map=parts, loose=list(loose), conflict=conflict,
                           location_only=isinstance(form, LocationForm),
                           can_reassign=current_scope().can("customer.reassign")), status


def _diff(c, submitted: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Fields whose saved value differs from what the user submitted (for the conflict view)."""
    out = []
    saved = svc.serialize(c, current_scope())
    for k, v in submitted.items():
        if k in ("version", "geometry", "geocode_quality"):
            continue
        cur = saved.get(k)
        a = "" if cur is None else str(cur)
        b = "" if v is None else str(v)
        if k in ("lon", "lat") and a and b:
            try:
                if abs(float(a) - float(b)) < 1e-9:
                    continue
            except ValueError:
                pass
        if a != b:
            out.append((k, a, b))
    return out


@bp.route("/customers/new", methods=["GET", "POST"])
@login_required
def create():
    scope = current_scope()
    if not scope.can("customer.create"):
        raise Forbidden("customer.create")
    s = db()
    form = CustomerForm()
    _fill_choices(form, s, scope)
    if request.method == "GET":
        form.kind.data, form.level.data, form.status.data, form.country.data = "company", "ordinary", "active", "FI"
        form.service_min.data = "10"
        return _render_form(form, None)
    if not form.validate_on_submit():
        return _render_form(form, None, loose=[_("The form expired; please submit again.")], status=400)
    data = _form_data(form, allow_owner=scope.can("customer.reassign"))
    try:
        body = CustomerCreate.model_validate(data)
        c = svc.create_customer(s, scope, body)
        s.commit()
    except (ValidationError, FilterError) as e:
        s.rollback()
        return _render_form(form, None, loose=_errors_to_form(form, e), status=FORM_INVALID)
    flash(_("Customer %(name)s created.", name=c.name), "success")
    return redirect(url_for("customers.detail", customer_id=c.id))


@bp.route("/customers/<int:customer_id>/edit", methods=["GET", "POST"])
@login_required
def edit(customer_id: int):
    scope = current_scope()
    s = db()
    c = svc.get_customer(s, scope, customer_id)
    if scope.can("customer.update"):
        form = CustomerForm()
        _fill_choices(form, s, scope)
    elif scope.can("customer.relocate_own") and c.id == scope.customer_id:
        form = LocationForm()
    else:
        raise Forbidden("customer.update")
    if request.method == "GET":
        if isinstance(form, CustomerForm):
            _fill_from(form, c)
        else:
            ll = svc.lonlat(c)
            form.lon.data, form.lat.data = (f"{ll[0]:.6f}", f"{ll[1]:.6f}") if ll else ("", "")
            form.version.data = str(c.version)
        return _render_form(form, c)
    if not form.validate_on_submit():
        return _render_form(form, c, loose=[_("The form expired; please submit again.")], status=400)
    try:
        expected = int(form.version.data or 0) or None
    except ValueError:
        expected = None
    if isinstance(form, CustomerForm):
        data = _form_data(form, c, allow_owner=scope.can("customer.reassign"))
    else:
        lon, lat = (form.lon.data or "").strip(), (form.lat.data or "").strip()
        data = {"lon": lon or None, "lat": lat or None}
    try:
        body = CustomerFields.model_validate(data)
        c = svc.update_customer(s, scope, customer_id, body, expected_version=expected)
        s.commit()
    except (ValidationError, FilterError) as e:
        s.rollback()
        return _render_form(form, c, loose=_errors_to_form(form, e), status=FORM_INVALID)
    except Conflict:
        s.rollback()
        current = svc.get_customer(s, scope, customer_id)
        diff = _diff(current, data)
        form.version.data = str(current.version)  # saving again now overwrites, knowingly
        return _render_form(form, current, conflict={"version": current.version, "diff": diff}, status=FORM_CONFLICT)
    flash(_("Saved."), "success")
    return redirect(url_for("customers.detail", customer_id=c.id))


@bp.post("/customers/<int:customer_id>/delete")
@login_required
def delete(customer_id: int):
    scope = current_scope()
    s = db()
    form = DeleteForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        svc.delete_customer(s, scope, customer_id, expected_version=int(form.version.data or 0) or None)
        s.commit()
    except Conflict:
        s.rollback()
        flash(_("The customer was changed by someone else; review it before deleting."), "error")
        return redirect(url_for("customers.detail", customer_id=customer_id))
    flash(_("Customer deleted."), "success")
    return redirect(url_for("customers.list_view"))


# -- contacts -------------------------------------------------------------------------------
def _contact_data(form: ContactForm) -> dict[str, Any]:
    data = {k: (getattr(form, k).data or "").strip() for k in ("name", "title", "office_phone", "mobile_phone",
                                                              "email", "notes")}
    data["gender"] = form.gender.data or "unknown"
    data["is_primary"] = bool(form.is_primary.data)
    return data


def _contact_page(form, c, k=None, loose=(), status=200):
    return render_template("customers/contact_form.html", form=form, c=c, k=k, loose=list(loose)), status


@bp.post("/customers/<int:customer_id>/contacts")
@login_required
def contact_create(customer_id: int):
    scope = current_scope()
    s = db()
    c = svc.get_customer(s, scope, customer_id)
    if not scope.can("contact.write"):
        raise Forbidden("contact.write")
    form = ContactForm()
    if not form.validate_on_submit():
        return _contact_page(form, c, loose=[_("The form expired; please submit again.")], status=400)
    try:
        svc.create_contact(s, scope, c.id, ContactCreate.model_validate(_contact_data(form)))
        s.commit()
    except (ValidationError, FilterError) as e:
        s.rollback()
        return _contact_page(form, c, loose=_errors_to_form(form, e), status=FORM_INVALID)
    flash(_("Contact added."), "success")
    return redirect(url_for("customers.detail", customer_id=c.id) + "#contacts")


@bp.route("/contacts/<int:contact_id>/edit", methods=["GET", "POST"])
@login_required
def contact_edit(contact_id: int):
    scope = current_scope()
    s = db()
    k = svc.get_contact(s, scope, contact_id)
    c = svc.get_customer(s, scope, k.customer_id)
    if not scope.can("contact.write"):
        raise Forbidden("contact.write")
    form = ContactForm(obj=k) if request.method == "GET" else ContactForm()
    if request.method == "GET":
        form.version.data = str(k.version)
        return _contact_page(form, c, k)
    if not form.validate_on_submit():
        return _contact_page(form, c, k, loose=[_("The form expired; please submit again.")], status=400)
    try:
        expected = int(form.version.data or 0) or None
        svc.update_contact(s, scope, k.id, ContactFields.model_validate(_contact_data(form)), expected_version=expected)
        s.commit()
    except (ValidationError, FilterError) as e:
        s.rollback()
        return _contact_page(form, c, k, loose=_errors_to_form(form, e), status=FORM_INVALID)
    except (Conflict, ValueError):
        s.rollback()
        k = svc.get_contact(s, scope, contact_id)
        form.version.data = str(k.version)
        return _contact_page(form, c, k, loose=[_("Someone else changed this contact meanwhile. Your input is kept "
                                                  "below; save again to overwrite their change.")], status=FORM_CONFLICT)
    flash(_("Contact saved."), "success")
    return redirect(url_for("customers.detail", customer_id=c.id) + "#contacts")


@bp.post("/contacts/<int:contact_id>/delete")
@login_required
def contact_delete(contact_id: int):
    scope = current_scope()
    s = db()
    k = svc.get_contact(s, scope, contact_id)
    cid = k.customer_id
    form = DeleteForm()
    if not form.validate_on_submit():
        abort(400)
    svc.delete_contact(s, scope, contact_id)
    s.commit()
    flash(_("Contact deleted."), "success")
    return redirect(url_for("customers.detail", customer_id=cid) + "#contacts")
