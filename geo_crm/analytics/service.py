"""Service: requests by type and status, time to assign and to resolve (median and
p90, hours), satisfaction distribution and monthly trend, reopen rate, load per
service agent, complaints per 1,000 customers per region.

Definitions:
* requests: service records of visible customers created in the period;
* time to assign = assigned_at − created_at; time to resolve = handled_at − created_at
  (hours; records lacking the timestamp are left out). Median and p90 use linear
  interpolation between order statistics (PostgreSQL percentile_cont, numpy's default);
* satisfaction: every rating given in the period (`service_rating`, by rated_at);
* reopen rate: among records rated in the period, the share with any rating < 3;
* agent load: per assignee, requests assigned in the period, still open now
  (new/assigned/in_progress), resolved, and the median hours to resolve;
* complaints per 1,000 customers: requests of type 'complaint' created in the period
  per region, divided by the region's visible customers (filters applied) × 1,000.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geo_crm.analytics.common import ReportParams, Table, customer_clauses, in_population, num, share
from geo_crm.analytics.revenue import describe_source
from geo_crm.analytics.sqlutil import json_rows, run_json
from geo_crm.models import Customer, Region, ServiceRating, ServiceRecord, User
from geo_crm.security.scope import Scope

OPEN_STATUSES = ("new", "assigned", "in_progress")
COMPLAINT_TYPE = "complaint"


def period_bounds(p: ReportParams) -> tuple[datetime, datetime]:
    """[start, end) as UTC timestamps covering date_from..date_to."""
    start = datetime.combine(p.date_from, time(0), tzinfo=timezone.utc)
    return start, datetime.combine(p.date_to + timedelta(days=1), time(0), tzinfo=timezone.utc)


def hours(a, b):
    return func.extract("epoch", a - b) / 3600.0


def service(session: Session, scope: Scope, p: ReportParams) -> dict:
    start, end = period_bounds(p)
    R = ServiceRecord
    visible = in_population(R.customer_id, scope, p)
    recs = (select(R.id, R.type, R.status, R.customer_id, R.assignee_id, R.created_at, R.assigned_at, R.handled_at)
            .where(scope.service_record_filter(), visible,
                   R.created_at >= start, R.created_at < end)).cte("recs")
    r = recs.c
    tta = hours(r.assigned_at, r.created_at)
    ttr = hours(r.handled_at, r.created_at)

    def pct(q, expr):
        return func.percentile_cont(q).within_group(expr)
    times = json_rows(select(
        func.count().label("requests"),
        func.count(r.assigned_at).label("assigned"), func.count(r.handled_at).label("resolved"),
        pct(0.5, tta).label("assign_median"), pct(0.9, tta).label("assign_p90"),
        pct(0.5, ttr).label("resolve_median"), pct(0.9, ttr).label("resolve_p90")).select_from(recs))
    by_type_status = json_rows(select(r.type, r.status, func.count().label("n")).group_by(r.type, r.status))
    ratings_q = (select(ServiceRating.service_record_id, ServiceRating.rating, ServiceRating.rated_at)
                 .join(R, R.id == ServiceRating.service_record_id)
                 .where(scope.service_record_filter(), visible,
                        ServiceRating.rated_at >= start, ServiceRating.rated_at < end)).cte("ratings")
    g = ratings_q.c
    dist = json_rows(select(g.rating, func.count().label("n")).group_by(g.rating))
    month = func.to_char(func.date_trunc("month", func.timezone("UTC", g.rated_at)), "YYYY-MM")
    trend = json_rows(select(month.label("month"), func.count().label("n"), func.avg(g.rating).label("avg"),
                             func.count().filter(g.rating < 3).label("low")).group_by(month))
    per_rec = select(g.service_record_id, func.min(g.rating).label("worst")).group_by(g.service_record_id).subquery()
    reopen = json_rows(select(func.count().label("rated"),
                              func.count().filter(per_rec.c.worst < 3).label("reopened")).select_from(per_rec))
    # agent load: records assigned in the period (by assigned_at)
    arec = (select(R.assignee_id, R.status, R.created_at, R.handled_at)
            .where(scope.service_record_filter(), visible, R.assignee_id.is_not(None),
                   R.assigned_at >= start, R.assigned_at < end)).subquery()
    a = arec.c
    agents = json_rows(select(a.assignee_id.label("id"),
                              func.coalesce(func.nullif(User.full_name, ""), User.username).label("name"),
                              func.count().label("assigned"),
                              func.count().filter(a.status.in_(OPEN_STATUSES)).label("open"),
                              func.count(a.handled_at).label("resolved"),
                              pct(0.5, hours(a.handled_at, a.created_at)).label("resolve_median"))
                       .join(User, User.id == a.assignee_id, isouter=True)
                       .group_by(a.assignee_id, User.full_name, User.username))
    custs = (select(Customer.region_id, func.count().label("customers"))
             .where(*customer_clauses(scope, p)).group_by(Customer.region_id)).subquery()
    compl = (select(Customer.region_id, func.count().label("complaints"))
             .select_from(recs).join(Customer, Customer.id == r.customer_id)
             .where(r.type == COMPLAINT_TYPE).group_by(Customer.region_id)).subquery()
    complaints = json_rows(select(custs.c.region_id.label("id"), func.coalesce(Region.name, "(no region)").label("name"),
                                  custs.c.customers, func.coalesce(compl.c.complaints, 0).label("complaints"))
                           .join(compl, compl.c.region_id.is_not_distinct_from(custs.c.region_id), isouter=True)
                           .join(Region, Region.id == custs.c.region_id, isouter=True))
    res = run_json(session, times=times, bts=by_type_status, dist=dist, trend=trend, reopen=reopen, agents=agents,
                   complaints=complaints)
    t0 = (res["times"] or [{}])[0]
    ro = (res["reopen"] or [{}])[0]
    summary = {"requests": t0.get("requests", 0), "assigned": t0.get("assigned", 0),
               "resolved": t0.get("resolved", 0),
               "assign_hours_median": num(t0.get("assign_median")), "assign_hours_p90": num(t0.get("assign_p90")),
               "resolve_hours_median": num(t0.get("resolve_median")),
               "resolve_hours_p90": num(t0.get("resolve_p90")),
               "rated_records": ro.get("rated", 0), "reopened_records": ro.get("reopened", 0),
               "reopen_rate": share(ro.get("reopened", 0), ro.get("rated", 0))}
    types = sorted({x["type"] for x in res["bts"]})
    statuses = ["new", "assigned", "in_progress", "resolved", "archived"]
    grid = {(x["type"], x["status"]): x["n"] for x in res["bts"]}
    bts = Table([("type", "Type")] + [(s, s.replace("_", " ")) for s in statuses] + [("total", "Total")])
    for t in types:
        row = {"type": t, **{s: grid.get((t, s), 0) for s in statuses}}
        row["total"] = sum(row[s] for s in statuses)
        bts.rows.append(row)
    ratings = {x["rating"]: x["n"] for x in res["dist"]}
    n_ratings = sum(ratings.values())
    dist = Table([("rating", "Rating"), ("count", "Ratings"), ("share", "Share")],
                 [{"rating": k, "count": ratings.get(k, 0), "share": share(ratings.get(k, 0), n_ratings)}
                  for k in range(1, 6)])
    trend = Table([("month", "Month"), ("ratings", "Ratings"), ("average", "Average rating"),
                   ("low", "Ratings < 3")],
                  [{"month": x["month"], "ratings": x["n"], "average": num(x["avg"]), "low": x["low"]}
                   for x in sorted(res["trend"], key=lambda x: x["month"])])
    agents = Table([("name", "Agent"), ("assigned", "Assigned"), ("open", "Open"), ("resolved", "Resolved"),
                    ("resolve_hours_median", "Median hours to resolve")],
                   [{"id": x["id"], "name": x["name"], "assigned": x["assigned"], "open": x["open"],
                     "resolved": x["resolved"], "resolve_hours_median": num(x["resolve_median"])}
                    for x in sorted(res["agents"], key=lambda x: (-x["assigned"], str(x["name"])))])
    compl = Table([("name", "Region"), ("customers", "Customers"), ("complaints", "Complaints"),
                   ("per_1000", "Complaints per 1,000 customers")])
    for x in sorted(res["complaints"], key=lambda x: str(x["name"])):
        compl.rows.append({"id": x["id"], "name": x["name"], "customers": x["customers"],
                           "complaints": x["complaints"],
                           "per_1000": num(1000.0 * x["complaints"] / x["customers"]) if x["customers"] else None})
    return {"report": "service", "params": p.as_dict(), "source": describe_source(session, "live"),
            "summary": summary,
            "tables": {"by_type_status": bts.as_json(), "satisfaction": dist.as_json(), "trend": trend.as_json(),
                       "agents": agents.as_json(), "complaints_by_region": compl.as_json()},
            "charts": {"satisfaction": {"labels": [str(k) for k in range(1, 6)],
                                        "values": [ratings.get(k, 0) for k in range(1, 6)]},
                       "trend": {"labels": [x["month"] for x in trend.rows],
                                 "values": [x["average"] for x in trend.rows]},
                       "types": {"labels": types, "values": [r["total"] for r in bts.rows]}},
            "map": {"value": "per_1000", "rows": compl.rows}}


