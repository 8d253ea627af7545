"""Opportunity pages: pipeline list, detail with plan timeline and workflow forms, new."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import (DateField, DecimalField, FloatField, HiddenField, IntegerField, SelectField, StringField,
                     TextAreaField)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from geo_crm.http import current_scope, db, require
from geo_crm.models import Customer, User
from geo_crm.sales import service as sales
from geo_crm.errors import InvalidInput
from geo_crm.web.actions import parse_int, run_form_action

bp = Blueprint("sales", __name__)
PAGE = 50
STAGE_LABELS = {"lead": _l("Lead"), "qualified": _l("Qualified"), "proposal": _l("Proposal"),
                "negotiation": _l("Negotiation"), "won": _l("Won"), "lost": _l("Lost"), "open": _l("Open")}


class NewOpportunityForm(FlaskForm):
    source = SelectField(_l("Source"), validators=[DataRequired()])
    customer_id = IntegerField(_l("Existing customer ID"), validators=[Optional(), NumberRange(min=1)])
    prospect_name = StringField(_l("…or prospect name"), validators=[Optional(), Length(max=200)])
    prospect_lon = FloatField(_l("Prospect longitude"), validators=[Optional(), NumberRange(-180, 180)])
    prospect_lat = FloatField(_l("Prospect latitude"), validators=[Optional(), NumberRange(-90, 90)])
    summary = TextAreaField(_l("Summary"), validators=[DataRequired(), Length(max=5000)])
    contact_name = StringField(_l("Contact"), validators=[Optional(), Length(max=200)])
    contact_phone = StringField(_l("Contact phone"), validators=[Optional(), Length(max=50)])
    probability = IntegerField(_l("Probability (%)"), validators=[Optional(), NumberRange(0, 100)])
    amount = DecimalField(_l("Amount (EUR)"), places=2, validators=[Optional(), NumberRange(min=0)])
    expected_close = DateField(_l("Expected close"), validators=[Optional()])
    assignee_id = SelectField(_l("Account manager"), coerce=lambda v: int(v) if v else None, validators=[Optional()])


class AssignForm(FlaskForm):
    version = HiddenField()
    assignee_id = SelectField(_l("Account manager"), coerce=int, validators=[InputRequired()])


class StageForm(FlaskForm):
    version = HiddenField()
    stage = SelectField(_l("Stage"), choices=[(s, s) for s in sales.OPEN_STAGES], validators=[DataRequired()])


class LoseForm(FlaskForm):
    version = HiddenField()
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=2000)])


class WinForm(FlaskForm):
    version = HiddenField()


class StepForm(FlaskForm):
    planned_on = DateField(_l("Date"), validators=[DataRequired()])
    action = StringField(_l("Planned action"), validators=[DataRequired(), Length(max=2000)])


class ResultForm(FlaskForm):
    version = HiddenField()
    result = TextAreaField(_l("Result"), validators=[DataRequired(), Length(max=5000)])



def _names(session, ids) -> dict[int, str]:
    ids = {i for i in ids if i}
    return {u.id: u.full_name or u.username for u in session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}


def _customers(session, scope, ids) -> dict[int, Customer]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(ids), scope.customer_filter()))}


@bp.get("/opportunities")
@require("opportunity.read")
def opportunities():
    s, scope = db(), current_scope()
    stage = request.args.get("stage") if request.args.get("stage") in STAGE_LABELS else None
    status = request.args.get("status") if request.args.get("status") in ("open", "won", "lost") else None
    f = sales.OpportunityFilter(stage=stage, status=status, assignee_id=parse_int(request.args.get("assignee_id")),
                                q=(request.args.get("q") or "").strip()[:100] or None)
    rows = sales.list_opportunities(s, scope, f, limit=PAGE + 1, after_id=parse_int(request.args.get("after")))
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return render_template("sales/list.html", rows=rows, f=f, total=sales.count(s, scope, f), more=more,
                           next_after=rows[-1].id if more else None,
                           pipeline=sales.pipeline(s, scope, sales.OpportunityFilter(assignee_id=f.assignee_id)),
                           managers=sales.account_managers(s) if scope.role != "account_manager" else [],
                           names=_names(s, [o.assignee_id for o in rows]),
                           customers=_customers(s, scope, [o.customer_id for o in rows]),
                           labels=STAGE_LABELS, scope=scope)


@bp.route("/opportunities/new", methods=["GET", "POST"])
@require("opportunity.create")
def new():
    s, scope = db(), current_scope()
    form = NewOpportunityForm()
    form.source.choices = [(d.code, d.label) for d in sales.sources(s)]
    form.assignee_id.choices = [("", _("— assign later —"))] + [(u.id, u.full_name or u.username)
                                                                for u in sales.account_managers(s)]
    status = 200
    if form.validate_on_submit():
        try:
            o = sales.create(s, scope, source=form.source.data, summary=form.summary.data,
                             customer_id=form.customer_id.data, prospect_name=form.prospect_name.data,
                             prospect_lon=form.prospect_lon.data, prospect_lat=form.prospect_lat.data,
                             contact_name=form.contact_name.data or "", contact_phone=form.contact_phone.data or "",
                             probability=form.probability.data,
                             amount=float(form.amount.data) if form.amount.data is not None else 0,
                             expected_close=form.expected_close.data, assignee_id=form.assignee_id.data)
            s.commit()
            flash(_("Opportunity #%(id)s created.", id=o.id), "success")
            return redirect(url_for("sales.detail", opp_id=o.id), 303)
        except InvalidInput as e:
            s.rollback()
            getattr(form, e.field, form.summary).errors = [e.problem]
            status = 422
    elif request.method == "POST":
        status = 422
    return render_template("sales/new.html", form=form), status


@bp.get("/opportunities/<int:opp_id>")
@require("opportunity.read")
def detail(opp_id: int):
    s, scope = db(), current_scope()
    o = sales.get(s, scope, opp_id)
    v = str(o.version)
    forms = {}
    if o.status == "open":
        if scope.can("opportunity.assign"):
            forms["assign"] = AssignForm(prefix="assign", version=v, assignee_id=o.assignee_id)
            forms["assign"].assignee_id.choices = [(u.id, u.full_name or u.username) for u in sales.account_managers(s)]
        if scope.can("opportunity.update"):
            forms["stage"] = StageForm(prefix="stage", version=v, stage=o.stage)
        if scope.can("opportunity.plan"):
            forms["step"] = StepForm(prefix="step")
            forms["result"] = True
        if scope.can("opportunity.close"):
            forms["win"] = WinForm(prefix="win", version=v)
            forms["lose"] = LoseForm(prefix="lose", version=v)
    history = sales.stage_history(s, o)
    names = _names(s, [o.assignee_id, o.created_by, *[h.changed_by for h in history]])
    return render_template("sales/detail.html", o=o, forms=forms, history=history, names=names,
                           customer=_customers(s, scope, [o.customer_id]).get(o.customer_id),
                           lonlat=sales.prospect_lonlat(o), next_step=sales.next_step(o), labels=STAGE_LABELS,
                           result_form=ResultForm(prefix="res"), today=__import__("datetime").date.today())


def _act(opp_id: int, form, do, done: str):
    sales.get(db(), current_scope(), opp_id)  # 404 before anything else
    return run_form_action(form, do, done=done, back=url_for("sales.detail", opp_id=opp_id),
                           conflict_message=_("Someone changed this opportunity meanwhile: review it and try again."))


@bp.post("/opportunities/<int:opp_id>/assign")
@require("opportunity.assign")
def assign(opp_id: int):
    form = AssignForm(prefix="assign")
    form.assignee_id.choices = [(u.id, u.full_name or u.username) for u in sales.account_managers(db())]
    return _act(opp_id, form, lambda s, sc, f, v: sales.assign(s, sc, opp_id, f.assignee_id.data, version=v),
                _("Assigned."))


@bp.post("/opportunities/<int:opp_id>/stage")
@require("opportunity.update")
def stage(opp_id: int):
    return _act(opp_id, StageForm(prefix="stage"),
                lambda s, sc, f, v: sales.change_stage(s, sc, opp_id, f.stage.data, version=v), _("Stage changed."))


@bp.post("/opportunities/<int:opp_id>/win")
@require("opportunity.close")
def win(opp_id: int):
    return _act(opp_id, WinForm(prefix="win"), lambda s, sc, f, v: sales.win(s, sc, opp_id, version=v),
                _("Won! The customer is active."))


@bp.post("/opportunities/<int:opp_id>/lose")
@require("opportunity.close")
def lose(opp_id: int):
    return _act(opp_id, LoseForm(prefix="lose"),
                lambda s, sc, f, v: sales.lose(s, sc, opp_id, f.reason.data, version=v), _("Marked lost."))


@bp.post("/opportunities/<int:opp_id>/steps")
@require("opportunity.plan")
def add_step(opp_id: int):
    return _act(opp_id, StepForm(prefix="step"),
                lambda s, sc, f, v: sales.add_step(s, sc, opp_id, planned_on=f.planned_on.data, action=f.action.data),
                _("Plan step added."))


@bp.post("/opportunities/<int:opp_id>/steps/<int:step_id>/result")
@require("opportunity.plan")
def step_result(opp_id: int, step_id: int):
    return _act(opp_id, ResultForm(prefix="res"),
                lambda s, sc, f, v: sales.record_result(s, sc, opp_id, step_id, result=f.result.data, version=v),
                _("Result recorded."))
