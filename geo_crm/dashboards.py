"""What each role works on, for its dashboard. Plain queries through the Scope."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geo_crm.models import (Branch, ChurnAlert, Customer, DevelopmentPlanStep, Opportunity, Order, ServiceRecord)
from geo_crm.security.scope import Scope

LIMIT = 8


def headline(session: Session, scope: Scope) -> dict[str, float]:
    """Counts (and 12-month revenue for roles that see orders), each within the Scope."""
    out: dict[str, float] = {}
    if scope.can("customer.read"):
        out["customers"] = session.scalar(select(func.count()).select_from(Customer).where(scope.customer_filter()))
    if scope.can("opportunity.read"):
        out["open_opportunities"] = session.scalar(
            select(func.count()).select_from(Opportunity).where(scope.opportunity_filter(), Opportunity.status == "open"))
        out["weighted_pipeline_eur"] = round(float(session.scalar(
            select(func.coalesce(func.sum(Opportunity.amount * Opportunity.probability / 100.0), 0))
            .where(scope.opportunity_filter(), Opportunity.status == "open")) or 0))
    if scope.can("service.read"):
        out["open_service_records"] = session.scalar(
            select(func.count()).select_from(ServiceRecord).where(
                scope.service_record_filter(), ServiceRecord.status != "archived"))
    if scope.can("churn.read"):
        out["churn_warnings"] = session.scalar(
            select(func.count()).select_from(ChurnAlert).where(
                scope.churn_alert_filter(), ChurnAlert.status.in_(("warning", "under_recovery"))))
    if scope.can("order.read") and scope.role != "customer":
        since = date.today() - timedelta(days=365)
        out["revenue_12m_eur"] = round(float(session.scalar(
            select(func.coalesce(func.sum(Order.total_amount), 0)).where(
                scope.order_filter(), Order.status != "cancelled", Order.order_date >= since)) or 0))
    return out


def work_items(session: Session, scope: Scope, today: date | None = None) -> list[dict]:
    """Sections of actionable rows for the caller's role: [{title, kind, rows}]."""
    today = today or date.today()
    r = scope.role
    sections: list[dict] = []

    def add(title, kind, rows):
        sections.append({"title": title, "kind": kind, "rows": rows})

    if r == "account_manager":
        next_step = (select(func.min(DevelopmentPlanStep.planned_on))
                     .where(DevelopmentPlanStep.opportunity_id == Opportunity.id,
                            DevelopmentPlanStep.done_at.is_(None)).scalar_subquery())
        rows = session.execute(
            select(Opportunity.id, func.coalesce(Customer.name, Opportunity.prospect_name), Opportunity.stage,
                   Opportunity.amount, next_step.label("next_step"))
            .outerjoin(Customer, Customer.id == Opportunity.customer_id)
            .where(scope.opportunity_filter(), Opportunity.status == "open")
            .order_by(next_step.asc().nulls_last(), Opportunity.id).limit(LIMIT)).all()
        add("My open opportunities", "opportunity", [
            {"id": i, "name": n, "stage": s, "amount": float(a), "next_step": d} for i, n, s, a, d in rows])
        rows = session.execute(
            select(ServiceRecord.id, Customer.name, ServiceRecord.type, ServiceRecord.created_at)
            .join(Customer, Customer.id == ServiceRecord.customer_id)
            .where(scope.service_record_filter(), ServiceRecord.status == "new")
            .order_by(ServiceRecord.created_at).limit(LIMIT)).all()
        add("Service requests to assign", "service", [
            {"id": i, "name": n, "type": t, "since": c.date()} for i, n, t, c in rows])
    if r in ("account_manager", "sales_manager", "regional_manager", "admin"):
        rows = session.execute(
            select(ChurnAlert.id, Customer.id, Customer.name, ChurnAlert.last_order_at, ChurnAlert.status)
            .join(Customer, Customer.id == ChurnAlert.customer_id)
            .where(scope.churn_alert_filter(), ChurnAlert.status.in_(("warning", "under_recovery")))
            .order_by(ChurnAlert.last_order_at.asc().nulls_first()).limit(LIMIT)).all()
        add("Churn warnings to decide", "churn", [
            {"id": i, "customer_id": c, "name": n, "last_order": lo, "status": s} for i, c, n, lo, s in rows])
    if r in ("sales_manager", "regional_manager", "executive", "admin"):
        rows = session.execute(
            select(Opportunity.stage, func.count(), func.coalesce(func.sum(Opportunity.amount), 0),
                   func.coalesce(func.sum(Opportunity.amount * Opportunity.probability / 100.0), 0))
            .where(scope.opportunity_filter(), Opportunity.status == "open").group_by(Opportunity.stage)).all()
        order = {"lead": 0, "qualified": 1, "proposal": 2, "negotiation": 3}
        add("Pipeline by stage", "pipeline", sorted(
            [{"stage": s, "count": n, "amount": float(a), "weighted": float(w)} for s, n, a, w in rows],
            key=lambda x: order.get(x["stage"], 9)))
    if r == "service_agent":
        rows = session.execute(
            select(ServiceRecord.id, Customer.name, ServiceRecord.type, ServiceRecord.status, ServiceRecord.assigned_at)
            .join(Customer, Customer.id == ServiceRecord.customer_id)
            .where(scope.service_record_filter(), ServiceRecord.status.in_(("assigned", "in_progress")))
            .order_by(ServiceRecord.assigned_at).limit(LIMIT * 2)).all()
        add("My assigned service records", "service", [
            {"id": i, "name": n, "type": t, "status": s, "since": a.date() if a else None} for i, n, t, s, a in rows])
    if r == "logistics":
        tomorrow = today + timedelta(days=1)
        rows = session.execute(
            select(Order.delivery_date, func.count(), func.coalesce(func.sum(Order.total_load), 0))
            .where(scope.order_filter(), Order.status == "confirmed", Order.delivery_date >= today)
            .group_by(Order.delivery_date).order_by(Order.delivery_date).limit(LIMIT)).all()
        branch = session.get(Branch, scope.branch_id) if scope.branch_id else None
        add(f"Deliveries to plan{' for ' + branch.name if branch else ''}", "deliveries", [
            {"date": d, "orders": n, "load": int(ld), "tomorrow": d == tomorrow} for d, n, ld in rows])
    if r == "customer":
        rows = session.execute(
            select(ServiceRecord.id, ServiceRecord.subject, ServiceRecord.status, ServiceRecord.created_at)
            .where(scope.service_record_filter(), ServiceRecord.status != "archived")
            .order_by(ServiceRecord.created_at.desc()).limit(LIMIT)).all()
        add("My open service requests", "service", [
            {"id": i, "name": s_, "status": st, "since": c.date(), "to_rate": st == "resolved"} for i, s_, st, c in rows])
        rows = session.execute(
            select(Order.id, Order.number, Order.order_date, Order.status, Order.total_amount)
            .where(scope.order_filter()).order_by(Order.order_date.desc()).limit(LIMIT)).all()
        add("My recent orders", "order", [
            {"id": i, "name": num, "date": d, "status": s, "amount": float(a)} for i, num, d, s, a in rows])
    return sections
