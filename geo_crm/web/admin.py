"""Administration pages: users, roles (read-only), dictionaries, audit log."""
from __future__ import annotations

from datetime import date

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, IntegerField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, Optional

from geo_crm.http import Conflict, current_scope, db, require
from geo_crm.models import Branch, Territory
from geo_crm.models.enums import ROLES
from geo_crm.records import audit, dictionaries, users
from geo_crm.records.common import Invalid
from geo_crm.security.permissions import PERMISSIONS

bp = Blueprint("admin", __name__, url_prefix="/admin")


class UserForm(FlaskForm):
    username = StringField(_("Username"), validators=[DataRequired(), Length(min=2, max=64)])
    full_name = StringField(_("Full name"), validators=[Optional(), Length(max=200)])
    email = StringField(_("Email"), validators=[Optional(), Length(max=200)])
    role = SelectField(_("Role"), choices=[(r, r.replace("_", " ")) for r in ROLES])
    branch_id = SelectField(_("Branch (logistics)"), coerce=lambda v: int(v) if v else None)
    customer_id = IntegerField(_("Customer id (customer logins)"), validators=[Optional()])
    territory_ids = SelectMultipleField(_("Territories"), coerce=int)
    is_active = BooleanField(_("Active"), default=True)
    password = PasswordField(_("Password (leave empty to keep)"), validators=[Optional(), Length(max=256)])


class DictForm(FlaskForm):
    kind = StringField(_("Kind"), validators=[DataRequired(), Length(max=32)])
    code = StringField(_("Code"), validators=[DataRequired(), Length(max=64)])
    label = StringField(_("Label"), validators=[DataRequired(), Length(max=200)])
    sort = IntegerField(_("Sort"), default=0, validators=[Optional()])
    active = BooleanField(_("Active"), default=True)


def _choices(form: UserForm) -> None:
    s = db()
    form.branch_id.choices = [("", "—")] + [(b.id, b.name) for b in s.scalars(select(Branch).order_by(Branch.name))]
    form.territory_ids.choices = [(t.id, t.name) for t in s.scalars(select(Territory).order_by(Territory.name))]


@bp.get("")
@require("user.admin")
def index():
    page = users.list_users(db(), current_scope(), q=request.args.get("q") or None, limit=500)
    return render_template("admin/index.html", users=page.items, total=page.total, args=request.args)


@bp.get("/roles")
@require("user.admin")
def roles():
    table = [(r, sorted(a for a, rs in PERMISSIONS.items() if r in rs)) for r in ROLES]
    return render_template("admin/roles.html", table=table, actions=sorted(PERMISSIONS), PERMISSIONS=PERMISSIONS,
                           roles=ROLES)


@bp.route("/users/new", methods=["GET", "POST"])
@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@require("user.admin")
def user_edit(user_id: int | None = None):
    s, scope = db(), current_scope()
    u = users.get_user(s, scope, user_id) if user_id else None
    form = UserForm(obj=u) if u else UserForm()
    _choices(form)
    if u and request.method == "GET":
        form.territory_ids.data = [t.id for t in u.territories]
    if form.validate_on_submit():
        data = {"full_name": form.full_name.data or "", "email": form.email.data or None, "role": form.role.data,
                "branch_id": form.branch_id.data, "customer_id": form.customer_id.data,
                "territory_ids": form.territory_ids.data or [], "is_active": form.is_active.data}
        if form.password.data:
            data["password"] = form.password.data
        try:
            if u is None:
                data["username"] = form.username.data
                if not form.password.data:
                    raise Invalid("password", _("required for a new user"))
                u = users.create_user(s, scope, data)
            else:
                users.update_user(s, scope, u.id, data, int(request.form.get("version", "0")) or None)
            s.commit()
            flash(_("User %(u)s saved.", u=u.username), "success")
            return redirect(url_for("admin.index"))
        except Invalid as e:
            s.rollback()
            getattr(form, e.field, form.username).errors.append(e.problem)
        except Conflict:
            s.rollback()
            form.username.errors.append(_("Someone else changed this user; reload and try again."))
    return render_template("admin/user_form.html", form=form, u=u), (422 if form.errors else 200)


@bp.post("/users/<int:user_id>/deactivate")
@require("user.admin")
def user_deactivate(user_id: int):
    s = db()
    try:
        users.deactivate_user(s, current_scope(), user_id)
        s.commit()
        flash(_("User deactivated; their sessions and tokens ended."), "success")
    except Invalid as e:
        s.rollback()
        flash(e.problem, "error")
    return redirect(url_for("admin.index"))


@bp.route("/dictionaries", methods=["GET", "POST"])
@require("dictionary.write")
def dictionaries_view():
    s, scope = db(), current_scope()
    form = DictForm()
    if form.validate_on_submit():
        data = {"kind": form.kind.data, "code": form.code.data, "label": form.label.data,
                "sort": form.sort.data or 0, "active": form.active.data}
        try:
            existing = [d for d in dictionaries.list_entries(s, scope, kind=data["kind"]) if d.code == data["code"]]
            if existing:
                dictionaries.update_entry(s, scope, existing[0].id, data)
            else:
                dictionaries.create_entry(s, scope, data)
            s.commit()
            flash(_("Dictionary entry saved."), "success")
            return redirect(url_for("admin.dictionaries_view", kind=data["kind"]))
        except Invalid as e:
            s.rollback()
            getattr(form, e.field, form.code).errors.append(e.problem)
    kind = request.args.get("kind") or None
    return render_template("admin/dictionaries.html", form=form, kinds=dictionaries.kinds(s, scope), kind=kind,
                           entries=dictionaries.list_entries(s, scope, kind=kind)), (422 if form.errors else 200)


@bp.get("/audit")
@require("audit.read")
def audit_view():
    s, scope = db(), current_scope()
    a = request.args

    def _d(k):
        try:
            return date.fromisoformat(a[k]) if a.get(k) else None
        except ValueError:
            return None
    offset = int(a.get("offset", "0")) if a.get("offset", "0").isdigit() else 0
    error = None
    try:
        page = audit.query(s, scope, entity=a.get("entity") or None, entity_id=a.get("entity_id") or None,
                           username=a.get("username") or None, date_from=_d("date_from"), date_to=_d("date_to"),
                           limit=50, offset=offset)
    except Invalid as e:
        page, error = None, e.problem
    rows = [(r, audit.diff(r)) for r in page.items] if page else []
    return render_template("admin/audit.html", page=page, rows=rows, error=error, args=a,
                           entities=audit.entities(s, scope), PAGE=50)
