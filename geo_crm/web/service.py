"""Service request pages: list, detail with the actions the role allows, new request."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import HiddenField, IntegerField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from geo_crm.http import current_scope, db, require
from geo_crm.models import Customer, User
from geo_crm.errors import InvalidInput
from geo_crm.servicedesk import service as desk
from geo_crm.web.actions import parse_int, run_form_action

bp = Blueprint("service", __name__)
PAGE = 50
STATUS_LABELS = {"new": _l("New"), "assigned": _l("Assigned"), "in_progress": _l("In progress"),
                 "resolved": _l("Resolved"), "archived": _l("Archived")}


class NewRequestForm(FlaskForm):
    type = SelectField(_l("Type"), validators=[DataRequired()])
    customer_id = IntegerField(_l("Customer ID"), validators=[Optional(), NumberRange(min=1)])
    subject = StringField(_l("Subject"), validators=[Optional(), Length(max=200)])
    request_text = TextAreaField(_l("What do you need?"), validators=[DataRequired(), Length(max=10000)])


class AssignForm(FlaskForm):
    version = HiddenField()
    assignee_id = SelectField(_l("Service agent"), coerce=int, validators=[InputRequired()])


class StartForm(FlaskForm):
    version = HiddenField()
    notes = TextAreaField(_l("Notes"), validators=[Optional(), Length(max=5000)])


class ResolveForm(FlaskForm):
    version = HiddenField()
    result = TextAreaField(_l("Result"), validators=[DataRequired(), Length(max=10000)])
    notes = TextAreaField(_l("Handling notes"), validators=[Optional(), Length(max=5000)])


class NotesForm(FlaskForm):
    version = HiddenField()
    handling_notes = TextAreaField(_l("Handling notes"), validators=[Optional(), Length(max=20000)])


class RateForm(FlaskForm):
    version = HiddenField()
    rating = RadioField(_l("Your rating"), coerce=int, choices=[(i, str(i)) for i in range(5, 0, -1)],
                        validators=[InputRequired(message=_l("Choose 1 to 5 stars."))])
    comment = TextAreaField(_l("Comment"), validators=[Optional(), Length(max=2000)])



def _names(session, ids) -> dict[int, str]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return {u.id: u.full_name or u.username for u in session.scalars(select(User).where(User.id.in_(ids)))}


def _customers(session, scope, ids) -> dict[int, Customer]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(ids), scope.customer_filter()))}


@bp.get("/service")
@require("service.read")
def records():
    s, scope = db(), current_scope()
    status = request.args.get("status") or None
    if status not in (None, *desk.OPEN_STATUSES, "archived"):
        status = None
    f = desk.ServiceFilter(status=status, type=request.args.get("type") or None,
                           assignee_id=parse_int(request.args.get("assignee_id")),
                           open_only=request.args.get("open") == "1")
    after = parse_int(request.args.get("after"))
    rows = desk.list_records(s, scope, f, limit=PAGE + 1, after_id=after)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return render_template("service/list.html", rows=rows, total=desk.count(s, scope, f), f=f,
                           more=more, next_after=rows[-1].id if more else None,
                           counts=desk.status_counts(s, scope), types=desk.service_types(s),
                           agents=desk.service_agents(s) if scope.role != "customer" else [],
                           names=_names(s, [r.assignee_id for r in rows]),
                           customers=_customers(s, scope, [r.customer_id for r in rows]),
                           status_labels=STATUS_LABELS, scope=scope)


@bp.route("/service/new", methods=["GET", "POST"])
@require("service.create")
def new():
    s, scope = db(), current_scope()
    form = NewRequestForm()
    form.type.choices = [(t.code, t.label) for t in desk.service_types(s)]
    if request.method == "GET" and request.args.get("customer_id"):
        form.customer_id.data = parse_int(request.args.get("customer_id"))
    status = 200
    if form.validate_on_submit():
        try:
            rec = desk.create(s, scope, type=form.type.data, customer_id=form.customer_id.data,
                              subject=form.subject.data or "", request_text=form.request_text.data)
            s.commit()
            flash(_("Request #%(id)s filed.", id=rec.id), "success")
            return redirect(url_for("service.detail", record_id=rec.id), 303)
        except InvalidInput as e:
            s.rollback()
            getattr(form, e.field, form.request_text).errors = [e.problem]
            status = 422
    elif request.method == "POST":
        status = 422
    return render_template("service/new.html", form=form, scope=scope), status


def _forms(session, scope, rec):
    """The action forms this caller may use on this record now."""
    v = str(rec.version)
    forms = {}
    owner = session.scalar(select(Customer.owner_id).where(Customer.id == rec.customer_id))
    if scope.can("service.assign") and (scope.role == "admin" or owner == scope.user_id) \
            and rec.status in ("new", "assigned", "in_progress"):
        f = AssignForm(prefix="assign", version=v, assignee_id=rec.assignee_id)
        f.assignee_id.choices = [(a.id, a.full_name or a.username) for a in desk.service_agents(session)]
        forms["assign"] = f
    handler = scope.can("service.handle") and (scope.role == "admin" or rec.assignee_id == scope.user_id)
    if handler and rec.status == "assigned":
        forms["start"] = StartForm(prefix="start", version=v)
    if handler and rec.status == "in_progress":
        forms["resolve"] = ResolveForm(prefix="resolve", version=v)
    if handler and rec.status in ("assigned", "in_progress"):
        forms["notes"] = NotesForm(prefix="notes", version=v, handling_notes=rec.handling_notes)
    if scope.can("service.rate") and rec.status == "resolved" \
            and (scope.role != "account_manager" or owner == scope.user_id):
        forms["rate"] = RateForm(prefix="rate", version=v)
    return forms


@bp.get("/service/<int:record_id>")
@require("service.read")
def detail(record_id: int):
    s, scope = db(), current_scope()
    rec = desk.get(s, scope, record_id)
    cust = _customers(s, scope, [rec.customer_id]).get(rec.customer_id)
    ratings = desk.ratings(s, rec)
    names = _names(s, [rec.assignee_id, rec.assigned_by, rec.creator_id, *[r.rated_by for r in ratings]])
    return render_template("service/detail.html", rec=rec, customer=cust, ratings=ratings, names=names,
                           forms=_forms(s, scope, rec), status_labels=STATUS_LABELS, scope=scope,
                           types={t.code: t.label for t in desk.service_types(s)})


def _act(record_id: int, form_cls, prefix: str, do, done: str):
    """Validate an action form, run the domain verb, commit, and come back to the record."""
    s = db()
    desk.get(s, current_scope(), record_id)  # 404 before anything else
    form = form_cls(prefix=prefix)
    if hasattr(form, "assignee_id"):
        form.assignee_id.choices = [(a.id, a.full_name or a.username) for a in desk.service_agents(s)]
    return run_form_action(form, do, done=done, back=url_for("service.detail", record_id=record_id),
                           conflict_message=_("Someone changed this request meanwhile: review it and try again."))


@bp.post("/service/<int:record_id>/assign")
@require("service.assign")
def assign(record_id: int):
    return _act(record_id, AssignForm, "assign",
                lambda s, sc, f, v: desk.assign(s, sc, record_id, f.assignee_id.data, version=v),
                _("Assigned."))


@bp.post("/service/<int:record_id>/start")
@require("service.handle")
def start(record_id: int):
    return _act(record_id, StartForm, "start",
                lambda s, sc, f, v: desk.start(s, sc, record_id, notes=f.notes.data, version=v),
                _("Work started."))


@bp.post("/service/<int:record_id>/notes")
@require("service.handle")
def notes(record_id: int):
    return _act(record_id, NotesForm, "notes",
                lambda s, sc, f, v: desk.update_request(s, sc, record_id, {"handling_notes": f.handling_notes.data},
                                                        version=v),
                _("Notes saved."))


@bp.post("/service/<int:record_id>/resolve")
@require("service.handle")
def resolve(record_id: int):
    return _act(record_id, ResolveForm, "resolve",
                lambda s, sc, f, v: desk.resolve(s, sc, record_id, result=f.result.data, notes=f.notes.data,
                                                 version=v),
                _("Resolved: waiting for the customer's rating."))


@bp.post("/service/<int:record_id>/rate")
@require("service.rate")
def rate(record_id: int):
    def do(s, sc, f, v):
        rec = desk.rate(s, sc, record_id, rating=f.rating.data, comment=f.comment.data or "", version=v)
        do.reopened = rec.status == "in_progress"
    do.reopened = False
    resp = _act(record_id, RateForm, "rate", do, _("Thank you for your rating."))
    if do.reopened:
        flash(_("We are sorry it did not go well: the request has been reopened."), "info")
    return resp
