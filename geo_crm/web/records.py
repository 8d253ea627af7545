"""Web pages for orders, products, branches and partners."""
from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, NumberRange, Optional

from geo_crm.http import Conflict, current_scope, db, require
from geo_crm.models.enums import ORDER_STATUSES
from geo_crm.records import branches, orders, partners, products
from geo_crm.records.common import Invalid

bp = Blueprint("records", __name__)
PAGE = 50


def _int_arg(name: str, default: int = 0) -> int:
    try:
        return max(0, int(request.args.get(name, default)))
    except ValueError:
        return default


def _date_arg(name: str):
    try:
        return date.fromisoformat(request.args[name]) if request.args.get(name) else None
    except ValueError:
        return None


def _map(point_fc: dict, area_fc: dict | None, kind: str):
    import maps
    cfg = current_app.config["GEO_CRM"]
    coords = point_fc["features"][0]["geometry"]["coordinates"]
    m = maps.base_map((coords[1], coords[0]), 9, tile_url=cfg.tile_url, tile_attribution=cfg.tile_attribution)
    if area_fc and area_fc["features"]:
        maps.regions_layer(area_fc, name=_("Service area") if kind == "branch" else _("Coverage"),
                           popup=False).add_to(m)
    layer = maps.branches_layer if kind == "branch" else maps.partners_layer
    layer(point_fc, fields=()).add_to(m)
    from geo_crm.http import csp_nonce
    return maps.render_parts(m, nonce=csp_nonce())


# -- orders ---------------------------------------------------------------------------------
class OrderForm(FlaskForm):
    customer_id = IntegerField(_("Customer id"), validators=[DataRequired()])
    status = SelectField(_("Status"), choices=[("draft", "draft"), ("confirmed", "confirmed")])
    delivery_date = DateField(_("Delivery date"), validators=[Optional()])
    delivery_address = StringField(_("Delivery address"), validators=[Optional()])
    notes = TextAreaField(_("Notes"), validators=[Optional()])
    product_id = IntegerField(_("Product id"), validators=[DataRequired()])
    quantity = IntegerField(_("Quantity"), validators=[DataRequired(), NumberRange(min=1)])


class StatusForm(FlaskForm):
    status = SelectField(_("New status"), choices=[(s, s) for s in ORDER_STATUSES])


@bp.get("/orders")
@require("order.read")
def orders_view():
    s, scope = db(), current_scope()
    status = [x for x in request.args.getlist("status") if x in ORDER_STATUSES]
    offset = _int_arg("offset")
    try:
        page = orders.list_orders(s, scope, status=status or None, date_from=_date_arg("date_from"),
                                  date_to=_date_arg("date_to"), q=request.args.get("q") or None,
                                  limit=PAGE, offset=offset)
        error = None
    except Invalid as e:
        page, error = None, f"{e.field}: {e.problem}"
    return render_template("records/orders.html", page=page, error=error, statuses=ORDER_STATUSES,
                           sel_status=status, args=request.args, can_write=scope.can("order.write"), PAGE=PAGE)


bp.add_url_rule("/orders", "orders", orders_view)


@bp.route("/orders/new", methods=["GET", "POST"])
@require("order.write")
def order_new():
    form = OrderForm()
    if request.method == "GET" and request.args.get("customer_id", "").isdigit():
        form.customer_id.data = int(request.args["customer_id"])
    if form.validate_on_submit():
        s = db()
        data = {"customer_id": form.customer_id.data, "status": form.status.data,
                "delivery_date": form.delivery_date.data, "notes": form.notes.data or "",
                "lines": [{"product_id": form.product_id.data, "quantity": form.quantity.data}]}
        if form.delivery_address.data:
            data["delivery_address"] = form.delivery_address.data
        try:
            o = orders.create_order(s, current_scope(), data)
            s.commit()
            flash(_("Order %(n)s created.", n=o.number), "success")
            return redirect(url_for("records.order_detail", order_id=o.id))
        except Invalid as e:
            s.rollback()
            getattr(form, e.field.split(".")[-1], form.customer_id).errors.append(e.problem)
    return render_template("records/order_form.html", form=form), (422 if form.errors else 200)


@bp.route("/orders/<int:order_id>", methods=["GET", "POST"])
@require("order.read")
def order_detail(order_id: int):
    s, scope = db(), current_scope()
    o = orders.get_order(s, scope, order_id)
    form = StatusForm()
    form.status.choices = [(x, x) for x in sorted(orders.TRANSITIONS[o.status])]
    error = None
    if request.method == "POST":
        if not scope.can("order.write"):
            abort(403)
        if form.validate_on_submit():
            try:
                orders.update_order(s, scope, o.id, {"status": form.status.data},
                                    int(request.form.get("version", "0")) or None)
                s.commit()
                flash(_("Order status changed."), "success")
                return redirect(url_for("records.order_detail", order_id=o.id))
            except Invalid as e:
                s.rollback()
                error = e.problem
            except Conflict:
                s.rollback()
                error = _("Someone else changed this order; reload and try again.")
    feat = orders.order_feature(s, o, scope)
    return render_template("records/order_detail.html", o=feat["properties"], order=o, form=form, error=error,
                           can_write=scope.can("order.write") and bool(form.status.choices))


# -- products -------------------------------------------------------------------------------
@bp.get("/products")
@require("product.read")
def products_view():
    scope = current_scope()
    page = products.list_products(db(), scope, q=request.args.get("q") or None, limit=PAGE,
                                  offset=_int_arg("offset"))
    return render_template("records/products.html", page=page, items=[products.product_dict(p, scope)
                                                                      for p in page.items], args=request.args, PAGE=PAGE)


# -- branches -------------------------------------------------------------------------------
@bp.get("/branches")
@require("branch.read")
def branches_view():
    page = branches.list_branches(db(), current_scope(), q=request.args.get("q") or None, limit=PAGE,
                                  offset=_int_arg("offset"))
    return render_template("records/branches.html", page=page, args=request.args, PAGE=PAGE)


@bp.get("/branches/<int:branch_id>")
@require("branch.read")
def branch_detail(branch_id: int):
    s, scope = db(), current_scope()
    b = branches.get_branch(s, scope, branch_id)
    feat = branches.branch_feature(b, customers=branches.customers_served(s, scope, b.id))
    area = feat["properties"].pop("service_area")
    point_fc = {"type": "FeatureCollection", "features": [
        {**feat, "properties": {"id": b.id, "name": b.name}}]}
    area_fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": area, "properties": {"id": b.id, "name": b.name}}] if area else []}
    return render_template("records/branch_detail.html", b=b, props=feat["properties"],
                           parts=_map(point_fc, area_fc, "branch"))


# -- partners -------------------------------------------------------------------------------
@bp.get("/partners")
@require("partner.read")
def partners_view():
    page = partners.list_partners(db(), current_scope(), q=request.args.get("q") or None, limit=PAGE,
                                  offset=_int_arg("offset"))
    return render_template("records/partners.html", page=page, args=request.args, PAGE=PAGE)


@bp.get("/partners/<int:partner_id>")
@require("partner.read")
def partner_detail(partner_id: int):
    s = db()
    p = partners.get_partner(s, current_scope(), partner_id)
    feat = partners.partner_feature(s, p)
    area = feat["properties"].pop("coverage")
    point_fc = {"type": "FeatureCollection", "features": [{**feat, "properties": {"id": p.id, "name": p.name}}]}
    area_fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": area, "properties": {"id": p.id, "name": p.name}}] if area else []}
    return render_template("records/partner_detail.html", p=p, props=feat["properties"],
                           parts=_map(point_fc, area_fc, "partner"))
