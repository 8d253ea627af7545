"""Role dashboards: the things each role works on, from real data, within its Scope."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from sqlalchemy import func, select, text

from geo_crm.http import current_scope, database, db, login_required, read_db
from geo_crm.models import ChurnAlert, Customer, Opportunity, Order, ServiceRecord

bp = Blueprint("dashboard", __name__)


def summary(session, scope) -> dict:
    """Headline counts for the caller, each filtered by the Scope."""
    out = {}
    if scope.can("customer.read"):
        out["customers"] = session.scalar(select(func.count()).select_from(Customer).where(scope.customer_filter()))
    if scope.can("opportunity.read"):
        out["open_opportunities"] = session.scalar(
            select(func.count()).select_from(Opportunity).where(scope.opportunity_filter(), Opportunity.status == "open"))
    if scope.can("service.read"):
        out["open_service_records"] = session.scalar(
            select(func.count()).select_from(ServiceRecord).where(
                scope.service_record_filter(), ServiceRecord.status.not_in(("archived",))))
    if scope.can("churn.read"):
        out["churn_warnings"] = session.scalar(
            select(func.count()).select_from(ChurnAlert).where(
                scope.churn_alert_filter(), ChurnAlert.status.in_(("warning", "under_recovery"))))
    if scope.can("order.read"):
        out["orders_to_deliver"] = session.scalar(
            select(func.count()).select_from(Order).where(scope.order_filter(), Order.status == "confirmed"))
    return out


@bp.get("/")
def home():
    if current_scope() is None:
        return redirect(url_for("auth.login"))
    return redirect(url_for("dashboard.index"))


@bp.get("/dashboard")
@login_required
def index():
    scope = current_scope()
    return render_template("dashboard.html", summary=summary(db(), scope), scope=scope)


@bp.get("/healthz")
def healthz():
    """Liveness and database roles: the primary must answer; a replica is reported."""
    db().execute(select(1))
    out = {"status": "ok"}
    if database().replica_engine is not None:
        in_recovery = read_db().execute(text("SELECT pg_is_in_recovery()")).scalar()
        out["reads_from"] = "replica" if in_recovery else "primary"
    return out
