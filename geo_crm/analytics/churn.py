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

from datetime import date, timedelta

import numpy as np

from dateutil.relativedelta import relativedelta
from sqlalchemy import BigInteger, Integer, cast, func, literal, select, tuple_
from sqlalchemy.orm import Session

from geo_crm.analytics.arrays import fetch_columns, from_date, sorted_unique, to_date
from geo_crm.analytics.common import (WINDOW_DAYS, ReportParams, Table, covers_everyone, customer_clauses,
                                      in_population, num, share)
from geo_crm.analytics.periods import (Split, edge_orders, last_order_column, month_no, mv_cum, per_customer,
                                       split_period, whole_month_columns)
from geo_crm.analytics.revenue import customer_12m, describe_source, views_as_of
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
    clauses = customer_clauses(scope, p)
    alerts = (select(A.id, A.customer_id, A.status, A.detected_at,
                     func.coalesce(A.closed_at, A.decided_at).label("recovered_at"),
                     func.coalesce(A.decided_at, A.closed_at).label("lost_at"))
              .where(scope.churn_alert_filter(), in_population(A.customer_id, scope, p))).cte("alerts")
    a = alerts.c

    def monthly(ts, cond):
        m = func.to_char(func.date_trunc("month", func.timezone("UTC", ts)), "YYYY-MM")
        return json_rows(select(m.label("month"), func.count().label("n"))
                         .where(cond, ts >= start, ts < end).group_by(m))
    warnings = monthly(a.detected_at, a.id.is_not(None))
    recoveries = monthly(a.recovered_at, a.status == "recovered")
    losses = monthly(a.lost_at, a.status == "confirmed_lost")
    lost = (select(a.customer_id).where(a.status == "confirmed_lost", a.lost_at >= start, a.lost_at < end)
            .distinct().subquery("lost"))
    # churn rates by region, level and account manager in one pass (grouping sets)
    rates_q = json_rows(
        select(func.grouping(Customer.region_id).label("g_region"), func.grouping(Customer.level).label("g_level"),
               Customer.region_id, Customer.level, Customer.owner_id, func.count().label("customers"),
               func.count(lost.c.customer_id).label("lost"))
        .join_from(Customer, lost, lost.c.customer_id == Customer.id, isouter=True)
        .where(*clauses, Customer.status != "prospect")
        .group_by(func.grouping_sets(tuple_(Customer.region_id), tuple_(Customer.level), tuple_(Customer.owner_id))))
    c12_q, src = customer_12m(session, p)
    # the materialised view is a cheap scan (inline it); the live aggregate runs once
    c12 = c12_q.cte("c12") if src == "live" else c12_q.subquery("c12")
    at_risk = json_rows(select(func.count().label("customers"), func.coalesce(func.sum(c12.c.revenue), 0).label("revenue"))
                        .select_from(alerts).join(c12, c12.c.customer_id == a.customer_id, isouter=True)
                        .where(a.status.in_(OPEN_ALERT), a.detected_at < end))
    cutoff = p.as_of - relativedelta(months=inactive_months)
    inact = (select(Customer.id, c12.c.last_order_date)
             .join_from(Customer, c12, c12.c.customer_id == Customer.id)
             .where(*clauses, Customer.status.in_(("active", "dormant")), c12.c.last_order_date < cutoff)).cte("inact")
    inactive_n = select(func.count()).select_from(inact).scalar_subquery()
    first = select(inact).order_by(inact.c.last_order_date, inact.c.id).limit(limit).subquery("first")
    inactive = json_rows(select(Customer.id, Customer.code, Customer.name, Customer.level, Customer.status,
                                Region.name.label("region"), first.c.last_order_date,
                                (p.as_of - first.c.last_order_date).label("days"))
                         .join_from(first, Customer, Customer.id == first.c.id)
                         .join(Region, Region.id == Customer.region_id, isouter=True)
                         .order_by(first.c.last_order_date, first.c.id))
    live_days = None
    fast = _as_of_figures(session, scope, p, alerts, end, cutoff, limit) if src == "live" else None
    if fast is None:
        res = run_json(session, warnings=warnings, recoveries=recoveries, losses=losses, rates=rates_q,
                       at_risk=at_risk, inactive=inactive, inactive_n=inactive_n)
    else:
        res = run_json(session, warnings=warnings, recoveries=recoveries, losses=losses, rates=rates_q)
        res.update(fast)
        src, live_days = "mv_cum", fast["live_days"]
    region_names = dict(session.execute(select(Region.id, Region.name)).all())
    user_names = dict(session.execute(select(User.id, func.coalesce(func.nullif(User.full_name, ""),
                                                                    User.username))).all())
    res["by_region"], res["by_level"], res["by_owner"] = [], [], []
    for x in res["rates"]:
        row = {"customers": x["customers"], "lost": x["lost"]}
        if x["g_region"] == 0:
            res["by_region"].append({"id": x["region_id"], "name": region_names.get(x["region_id"], "(no region)"),
                                     **row})
        elif x["g_level"] == 0:
            res["by_level"].append({"id": x["level"], **row})
        else:
            res["by_owner"].append({"id": x["owner_id"], "name": user_names.get(x["owner_id"], "(unassigned)"),
                                    **row})
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
    return {"report": "churn", "params": p.as_dict(), "source": describe_source(session, src, live_days=live_days),
            "summary": summary,
            "tables": {"monthly": monthly_t.as_json(), "by_region": region_t.as_json(),
                       "by_level": rates(res["by_level"], "Level", named=False).as_json(),
                       "by_account_manager": rates(res["by_owner"], "Account manager").as_json(),
                       "inactive": inact.as_json()},
            "charts": {"monthly": {"labels": months, "warnings": [w.get(m, 0) for m in months],
                                   "recoveries": [rc.get(m, 0) for m in months],
                                   "losses": [ls.get(m, 0) for m in months]}},
            "map": {"value": "churn_rate", "rows": region_t.rows}}


def _as_of_figures(session: Session, scope: Scope, p: ReportParams, alerts, end, cutoff: date,
                   limit: int) -> dict | None:
    """Revenue at risk and the inactive customers as of any date, from the prefix-sum view
    (whole months) plus live edge days (geo_crm/analytics/periods.py), in numpy: the live
    per-customer aggregate over all orders takes ~10 s at 1M customers. Same definitions
    as the SQL path: 12-month revenue = orders dated as_of - 364 .. as_of; inactive = no
    order in cutoff .. as_of and one before cutoff, last order date = the last before
    cutoff. None when the views are not available (the caller computes live)."""
    view_as_of = views_as_of(session)
    if view_as_of is None or p.source == "live":
        return None
    as_of = p.as_of
    s12 = split_period(as_of - timedelta(days=WINDOW_DAYS - 1), as_of, view_as_of)
    sc = split_period(cutoff, as_of, view_as_of)
    # the last order before cutoff matters only for customers without an order in
    # cutoff..as_of: for them it is the last one up to the end of cutoff's month, which
    # the view holds when that month is complete in it (else: up to cutoff - 1, live tail)
    if month_no(cutoff) < month_no(view_as_of):
        sl, last_month = Split(None, ()), month_no(cutoff)
    else:
        sl = split_period(date(1900, 1, 1), cutoff - timedelta(days=1), view_as_of)
        last_month = sl.months[1] if sl.months else None
    zero = cast(literal(0), BigInteger)
    stmt = select(mv_cum.c.customer_id,
                  whole_month_columns(s12.months)["revenue"] if s12.months else zero,
                  whole_month_columns(sc.months)["orders"] if sc.months else zero,
                  cast(last_order_column(last_month), Integer) if last_month is not None
                  else cast(literal(-1), Integer))
    k = fetch_columns(session, stmt, [("id", "int4"), ("rev", "int8"), ("recent", "int8"), ("last", "int4")])
    ranges = sorted(set(s12.edges) | set(sc.edges) | set(sl.edges))
    e = edge_orders(session, ranges, margin=False)
    ids = sorted_unique(np.concatenate([k["id"], e["id"]]))
    rev, recent = np.zeros(len(ids), np.int64), np.zeros(len(ids), np.int64)
    last = np.full(len(ids), -1, np.int64)
    at = np.searchsorted(ids, k["id"])
    rev[at], recent[at], last[at] = k["rev"], k["recent"], k["last"]

    def edge_part(split):
        if not split.edges or not len(e["id"]):
            return {"rev": 0, "orders": 0, "last": -1}
        inside = np.zeros(len(e["id"]), bool)
        for a, b in split.edges:
            inside |= (e["day"] >= from_date(a)) & (e["day"] <= from_date(b))
        return per_customer(ids, {c: v[inside] for c, v in e.items()})
    rev = rev + edge_part(s12)["rev"]
    recent = recent + edge_part(sc)["orders"]
    last = np.maximum(last, edge_part(sl)["last"])
    # revenue at risk: open alerts (as they stand now) detected by as_of
    a = alerts.c
    risky = fetch_columns(session, select(a.customer_id).where(a.status.in_(OPEN_ALERT), a.detected_at < end),
                          [("id", "int4")])["id"]
    pos = np.minimum(np.searchsorted(ids, risky), max(len(ids) - 1, 0))
    risk_rev = int(np.where(ids[pos] == risky, rev[pos], 0).sum()) if len(ids) else 0
    # not ordered since cutoff: active or dormant customers of the population
    pop = fetch_columns(session, select(Customer.id).where(*customer_clauses(scope, p),
                                                           Customer.status.in_(("active", "dormant"))),
                        [("id", "int4")], whole_tables=covers_everyone(scope, p))["id"]
    pos = np.minimum(np.searchsorted(ids, pop), max(len(ids) - 1, 0))
    found = ids[pos] == pop if len(ids) else np.zeros(len(pop), bool)
    lapsed = found & (recent[pos] == 0) & (last[pos] >= 0)
    who, when = pop[lapsed], last[pos][lapsed]
    order = np.lexsort((who, when))[:limit]
    first_ids = [int(who[j]) for j in order]
    info = {}
    if first_ids:
        rows = session.execute(select(Customer.id, Customer.code, Customer.name, Customer.level, Customer.status,
                                      Region.name.label("region"))
                               .join(Region, Region.id == Customer.region_id, isouter=True)
                               .where(Customer.id.in_(first_ids))).all()
        info = {r.id: r for r in rows}
    inactive = []
    for j in order:
        r, d = info[int(who[j])], to_date(when[j])
        inactive.append({"id": r.id, "code": r.code, "name": r.name, "level": r.level, "status": r.status,
                         "region": r.region, "last_order_date": d.isoformat(), "days": (as_of - d).days})
    return {"at_risk": [{"customers": len(risky), "revenue": risk_rev / 100}], "inactive": inactive,
            "inactive_n": int(lapsed.sum()), "live_days": sum((b - a).days + 1 for a, b in ranges)}
