"""Shared handling of workflow form posts (sales, service, churn): validate, run the
domain verb, commit, flash the outcome, and go back to the record."""
from __future__ import annotations

from typing import Callable

from flask import abort, flash, redirect
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from geo_crm.http import Conflict, Forbidden, current_scope, db
from geo_crm.errors import InvalidInput, InvalidTransition


def parse_int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def form_errors(form: FlaskForm) -> str:
    return "; ".join(f"{getattr(form, k).label.text}: {' '.join(v)}" for k, v in form.errors.items())


def run_form_action(form: FlaskForm, do: Callable, *, done: str, back: str, conflict_message: str):
    """`do(session, scope, form, version)` performs the verb; `version` comes from the
    form's hidden `version` field (optimistic locking). Redirects (303) to `back`."""
    s, scope = db(), current_scope()
    if not form.validate_on_submit():
        flash(form_errors(form) or _("The form was incomplete."), "error")
        return redirect(back, 303)
    version = parse_int(form.version.data) if hasattr(form, "version") else None
    try:
        do(s, scope, form, version)
        s.commit()
        flash(done, "success")
    except (InvalidTransition, InvalidInput) as e:
        s.rollback()
        flash(str(e), "error")
    except Conflict:
        s.rollback()
        flash(conflict_message, "error")
    except Forbidden:
        s.rollback()
        abort(403)
    return redirect(back, 303)
