"""Churn: warnings, recoveries and confirmed losses per month; churn rate by region,
level and account manager; revenue at risk; customers who have not ordered for N
months.

Definitions (as_of = the period's end date):
* warnings: alerts detected in a month; recoveries: alerts with status 'recovered'
  closed (closed_at, else decided_at) in a month; losses: 'confirmed_lost' alerts
  decided (decided_at, else closed_at) in a month; months of the period only;
* churn rate of a group = customers with a loss confirmed in the period / customers
  of the group that are not prospects (visible, filtered, counted now);
* revenue at risk: 12-month revenue (365 days to as_of) of customers with an open
  alert (warning or under_recovery, as the alert stands now) detected by as_of;
* not ordered for N months: active or dormant customers whose last order (confirmed
  or delivered, up to as_of) is older than as_of − N months; customers that never
  ordered are not listed (they have not lapsed).
"""
from __future__ import annotations

from datetime import date

from dateutil.relativedelta import relativedelta
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geo_crm.analytics.common import ReportParams, Table, customer_clauses, num, share
from geo_crm.analytics.revenue import customer_12m, describe_source
from geo_crm.analytics.service import period_bounds
from geo_crm.analytics.sqlutil import json_rows, run_json
from geo_crm.models import ChurnAlert, Customer, Region, User
from geo_crm.security.scope import Scope

OPEN_ALERT = ("warning", "under_recovery")


def months_between(a: date, b: date) -> list[str]:
    out, m = [], a.replace(day=1)
    while m <= b:
        out.append(m.strftime("%Y-%m"))
        m += relativedelta(months=1)
    return out


def churn(session: Session, scope: Scope, p: ReportParams, *, inactive_months: int = 6, limit: int = 200) -> dict:
    start, end = period_bounds(p)
    A = ChurnAlert
    cust = select(Customer.id, Customer.region_id, Customer.level, Customer.owner_id, Customer.status,
                  Customer.name, Customer.code).where(*customer_clauses(scope, p)).cte("cust")
    c = cust.c
    alerts = (select(A.id, A.customer_id, A.status, A.detected_at,
                     func.coalesce(A.closed_at, A.decided_at).label("recovered_at"),
                     func.coalesce(A.decided_at, A.closed_at).label("lost_at"))
              .where(scope.churn_alert_filter(), A.customer_id.in_(select(c.id)))).cte("alerts")
    a = alerts.c

    def monthly(ts, cond):
        m = func.to_char(func.date_trunc("month", func.timezone("UTC", ts)), "YYYY-MM")
        return json_rows(select(m.label("month"), func.count().label("n"))
                         .where(cond, ts >= start, ts < end).group_by(m))
    warnings = monthly(a.detected_at, a.id.is_not(None))
    recoveries = monthly(a.recovered_at, a.status == "recovered")
    losses = monthly(a.lost_at, a.status == "confirmed_lost")
    lost_ids = select(a.customer_id).where(a.status == "confirmed_lost", a.lost_at >= start, a.lost_at < end)

    def rate_by(key, name_col=None, join=None, on=None):
        cols = [key.label("id")] + ([name_col.label("name")] if name_col is not None else [])
        q = select(*cols, func.count().label("customers"),
                   func.count().filter(c.id.in_(lost_ids)).label("lost")).select_from(cust)
        if join is not None:
            q = q.join(join, on, isouter=True)
        return json_rows(q.where(c.status != "prospect").group_by(*cols))
    by_region = rate_by(c.region_id, func.coalesce(Region.name, "(no region)"), Region, Region.id == c.region_id)
    by_level = rate_by(c.level)
    by_owner = rate_by(c.owner_id, func.coalesce(func.nullif(User.full_name, ""), User.username, "(unassigned)"),
                       User, User.id == c.owner_id)
    c12_q, src = customer_12m(session, p)
    c12 = c12_q.cte("c12")
    at_risk = json_rows(select(func.count().label("customers"), func.coalesce(func.sum(c12.c.revenue), 0).label("revenue"))
                        .select_from(alerts).join(c12, c12.c.customer_id == a.customer_id, isouter=True)
                        .where(a.status.in_(OPEN_ALERT), a.detected_at < end))
    cutoff = p.as_of - relativedelta(months=inactive_months)
    inactive_q = (select(c.id, c.code, c.name, c.level, c.status, Region.name.label("region"),
                         c12.c.last_order_date, (p.as_of - c12.c.last_order_date).label("days"))
                  .select_from(cust).join(c12, c12.c.customer_id == c.id)
                  .join(Region, Region.id == c.region_id, isouter=True)
                  .where(c.status.in_(("active", "dormant")), c12.c.last_order_date < cutoff))
    inactive_n = select(func.count()).select_from(inactive_q.subquery()).scalar_subquery()
    inactive = json_rows(inactive_q.order_by(c12.c.last_order_date, c.id).limit(limit))
    res = run_json(session, warnings=warnings, recoveries=recoveries, losses=losses, by_region=by_region,
                   by_level=by_level, by_owner=by_owner, at_risk=at_risk, inactive=inactive, inactive_n=inactive_n)
    months = months_between(p.date_from, p.date_to)
    w = {x["month"]: x["n"] for x in res["warnings"]}
    rc = {x["month"]: x["n"] for x in res["recoveries"]}
    ls = {x["month"]: x["n"] for x in res["losses"]}
    monthly_t = Table([("month", "Month"), ("warnings", "Warnings"), ("recoveries", "Recoveries"),
                       ("losses", "Confirmed losses")],
                      [{"month": m, "warnings": w.get(m, 0), "recoveries": rc.get(m, 0), "losses": ls.get(m, 0)}
                       for m in months])

    def rates(rows, label, named=True):
        t = Table([("name", label), ("customers", "Customers"), ("lost", "Lost in period"),
                   ("churn_rate", "Churn rate")])
        for x in sorted(rows, key=lambda x: str(x.get("name", x["id"]))):
            t.rows.append({"id": x["id"], "name": x["name"] if named else x["id"], "customers": x["customers"],
                           "lost": x["lost"], "churn_rate": share(x["lost"], x["customers"])})
        return t
    risk = (res["at_risk"] or [{}])[0]
    inact = Table([("code", "Code"), ("name", "Customer"), ("level", "Level"), ("status", "Status"),
                   ("region", "Region"), ("last_order_date", "Last order"), ("days", "Days since")],
                  [{"customer_id": x["id"], "code": x["code"], "name": x["name"], "level": x["level"],
                    "status": x["status"], "region": x["region"], "last_order_date": x["last_order_date"],
                    "days": x["days"]} for x in res["inactive"]])
    region_t = rates(res["by_region"], "Region")
    total_c = sum(x["customers"] for x in res["by_level"])
    total_l = sum(x["lost"] for x in res["by_level"])
    summary = {"warnings": sum(w.values()), "recoveries": sum(rc.values()), "losses": sum(ls.values()),
               "churn_rate": share(total_l, total_c), "open_alerts": risk.get("customers", 0),
               "revenue_at_risk": num(risk.get("revenue") or 0), "inactive_months": inactive_months,
               "inactive_customers": res["inactive_n"], "as_of": p.as_of.isoformat()}
    return {"report": "churn", "params": p.as_dict(), "source": describe_source(session, src), "summary": summary,
            "tables": {"monthly": monthly_t.as_json(), "by_region": region_t.as_json(),
                       "by_level": rates(res["by_level"], "Level", named=False).as_json(),
                       "by_account_manager": rates(res["by_owner"], "Account manager").as_json(),
                       "inactive": inact.as_json()},
            "charts": {"monthly": {"labels": months, "warnings": [w.get(m, 0) for m in months],
                                   "recoveries": [rc.get(m, 0) for m in months],
                                   "losses": [ls.get(m, 0) for m in months]}},
            "map": {"value": "churn_rate", "rows": region_t.rows}}
