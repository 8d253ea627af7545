"""Churn warnings page: at-risk customers with last order, months since and 12-month
revenue; recovery measures and confirmed losses."""
from __future__ import annotations

from flask import Blueprint, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, TextAreaField
from wtforms.validators import DataRequired, Length

from geo_crm.churn import service as churn
from geo_crm.http import current_scope, db, require
from geo_crm.web.actions import parse_int, run_form_action

bp = Blueprint("churn", __name__)
PAGE = 50
STATUS_LABELS = {"warning": _l("Warning"), "under_recovery": _l("Under recovery"),
                 "confirmed_lost": _l("Confirmed lost"), "recovered": _l("Recovered")}


class RecoverForm(FlaskForm):
    version = HiddenField()
    measures = TextAreaField(_l("Recovery measures"), validators=[DataRequired(), Length(max=5000)])


class LossForm(FlaskForm):
    version = HiddenField()
    reason = TextAreaField(_l("Why was the customer lost?"), validators=[DataRequired(), Length(max=2000)])



@bp.get("/churn")
@require("churn.read")
def alerts():
    s, scope = db(), current_scope()
    status = request.args.get("status") or None
    if status not in (None, *STATUS_LABELS):
        status = None
    open_only = status is None and request.args.get("all") != "1"
    f = churn.AlertFilter(status=status, open_only=open_only)
    rows = churn.list_alerts(s, scope, f, limit=PAGE + 1, after_id=parse_int(request.args.get("after")))
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    may_decide = scope.can("churn.decide")
    decidable = {r["id"] for r in rows if may_decide and r["status"] in churn.OPEN
                 and (scope.role == "admin" or r["owner_id"] == scope.user_id)}
    return render_template("churn/list.html", rows=rows, total=churn.count(s, scope, f), status=status,
                           open_only=open_only, more=more, next_after=rows[-1]["id"] if more else None,
                           decidable=decidable, status_labels=STATUS_LABELS, recover_form=RecoverForm(prefix="r"),
                           loss_form=LossForm(prefix="l"), scope=scope)


def _act(alert_id: int, form, do, done: str):
    churn.get(db(), current_scope(), alert_id)  # 404 before anything else
    back = request.form.get("next") or url_for("churn.alerts")
    if not back.startswith("/") or back.startswith("//"):
        back = url_for("churn.alerts")
    return run_form_action(form, do, done=done, back=back,
                           conflict_message=_("Someone changed this warning meanwhile: review it and try again."))


@bp.post("/churn/<int:alert_id>/recover")
@require("churn.decide")
def recover(alert_id: int):
    return _act(alert_id, RecoverForm(prefix="r"),
                lambda s, sc, f, v: churn.recover(s, sc, alert_id, f.measures.data, version=v),
                _("Recovery measures recorded."))


@bp.post("/churn/<int:alert_id>/confirm-loss")
@require("churn.decide")
def confirm_loss(alert_id: int):
    return _act(alert_id, LossForm(prefix="l"),
                lambda s, sc, f, v: churn.confirm_loss(s, sc, alert_id, f.reason.data, version=v),
                _("Loss confirmed: the customer is now marked lost."))
