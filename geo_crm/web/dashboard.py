"""Role dashboards: the things each role works on, from real data, within its Scope."""
from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, url_for
from sqlalchemy import select, text

from geo_crm.http import current_scope, database, db, login_required, read_db
from geo_crm import dashboards

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def home():
    if current_scope() is None:
        return redirect(url_for("auth.login"))
    return redirect(url_for("dashboard.index"))


@bp.get("/dashboard")
@login_required
def index():
    scope = current_scope()
    return render_template("dashboard.html", summary=dashboards.headline(db(), scope),
                           sections=dashboards.work_items(db(), scope), scope=scope)


@bp.get("/favicon.ico")
def favicon():
    return current_app.send_static_file("favicon.svg")


@bp.get("/healthz")
def healthz():
    """Liveness and database roles: the primary must answer; a replica is reported."""
    db().execute(select(1))
    out = {"status": "ok"}
    if database().replica_engine is not None:
        in_recovery = read_db().execute(text("SELECT pg_is_in_recovery()")).scalar()
        out["reads_from"] = "replica" if in_recovery else "primary"
    return out
