"""Contribution: revenue and margin per customer over a period, ABC/Pareto classes,
concentration (top-20% share, Lorenz curve, Gini), top customers, and contribution per
region, territory, service branch and account manager.

Definitions (EUR; orders confirmed or delivered, dated in the period):
* population: visible customers matching the filters with revenue > 0 in the period;
* ABC: customers sorted by revenue (desc, id asc). A customer is class A when the
  revenue of the customers before it is < 80% of the total, B when it is < 95%, else C.
  So A is the smallest top set reaching 80% of revenue (the customer that crosses 80%
  is A), B the next customers up to 95%, C the rest;
* top-20% share: revenue of the top ceil(0.2 n) customers / total revenue;
* Lorenz curve: (share of customers, share of revenue) with customers in ascending
  revenue order, at most 101 points including (0, 0);
* Gini = 2 Σ i·x_i / (n Σ x_i) − (n + 1) / n, x ascending, i = 1..n;
* territories may overlap, so territory rows can add up to more than the total.
"""
from __future__ import annotations

from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from geo_crm.analytics.common import ReportParams, Table, customer_clauses, num, share
from geo_crm.analytics.revenue import describe_source, period_revenue
from geo_crm.analytics.sqlutil import json_rows, run_json
from geo_crm.models import Branch, Customer, CustomerTerritory, Region, Territory, User
from geo_crm.security.scope import Scope

A_SHARE, B_SHARE = 0.8, 0.95


def contribution(session: Session, scope: Scope, p: ReportParams, *, top: int = 20) -> dict:
    rev_q, src = period_revenue(session, p)
    rev = rev_q.subquery("rev")
    # keep the sorted rows narrow (ids and money only): names are joined for the top rows
    base = (select(rev.c.customer_id, rev.c.revenue, rev.c.margin, rev.c.orders, Customer.region_id,
                   Customer.service_branch_id, Customer.owner_id)
            .join_from(rev, Customer, Customer.id == rev.c.customer_id)
            .where(*customer_clauses(scope, p), rev.c.revenue > 0)).cte("base")
    order = (base.c.revenue.desc(), base.c.customer_id)
    ranked = select(base, func.row_number().over(order_by=order).label("rn"),
                    func.sum(base.c.revenue).over(order_by=order, rows=(None, 0)).label("cum"),
                    func.count().over().label("n"), func.sum(base.c.revenue).over().label("total")).cte("ranked")
    r = ranked.c
    before = r.cum - r.revenue
    cls = case((before < literal(A_SHARE) * r.total, "A"), (before < literal(B_SHARE) * r.total, "B"),
               else_="C").label("abc")
    asc_i = r.n - r.rn + 1
    summary = json_rows(select(
        func.count().label("customers"), func.sum(r.revenue).label("revenue"), func.sum(r.margin).label("margin"),
        func.sum(r.orders).label("orders"),
        (2.0 * func.sum(asc_i * r.revenue) / (func.max(r.n) * func.sum(r.revenue))
         - (func.max(r.n) + 1.0) / func.max(r.n)).label("gini"),
        func.sum(r.revenue).filter(r.rn <= func.ceil(0.2 * r.n)).label("top20_revenue"),
        func.max(func.ceil(0.2 * r.n)).label("top20_customers")).select_from(ranked))
    classes = json_rows(select(cls, func.count().label("customers"), func.sum(r.revenue).label("revenue"),
                               func.sum(r.margin).label("margin")).group_by(cls))
    lorenz = json_rows(select(asc_i.label("i"), r.n, (r.total - r.cum + r.revenue).label("cum"), r.total)
                       .where(func.floor(asc_i * 100.0 / r.n) > func.floor((asc_i - 1) * 100.0 / r.n)))
    tops = json_rows(select(r.customer_id, Customer.code, Customer.name, Customer.level, r.revenue, r.margin,
                            r.orders, r.rn, cls, Region.name.label("region"))
                     .join_from(ranked, Customer, Customer.id == r.customer_id)
                     .join(Region, Region.id == r.region_id, isouter=True)
                     .where(r.rn <= top))
    b = base.c

    def by(key_col, name_col, join, on, label):
        return json_rows(select(key_col.label("id"), func.coalesce(name_col, label).label("name"),
                                func.count().label("customers"), func.sum(b.revenue).label("revenue"),
                                func.sum(b.margin).label("margin"))
                         .select_from(base).join(join, on, isouter=True).group_by(key_col, name_col))

    regions = by(b.region_id, Region.name, Region, Region.id == b.region_id, "(no region)")
    branches = by(b.service_branch_id, Branch.name, Branch, Branch.id == b.service_branch_id, "(no branch)")
    owners = by(b.owner_id, func.coalesce(func.nullif(User.full_name, ""), User.username), User,
                User.id == b.owner_id, "(unassigned)")
    territories = json_rows(
        select(Territory.id, Territory.name, func.count().label("customers"), func.sum(b.revenue).label("revenue"),
               func.sum(b.margin).label("margin"))
        .select_from(base).join(CustomerTerritory, CustomerTerritory.customer_id == b.customer_id)
        .join(Territory, Territory.id == CustomerTerritory.territory_id)
        .where(scope.territory_filter()).group_by(Territory.id, Territory.name))
    res = run_json(session, summary=summary, classes=classes, lorenz=lorenz, tops=tops, regions=regions,
                   branches=branches, owners=owners, territories=territories)
    return _shape(res, p, src, session)


def _shape(res: dict, p: ReportParams, src: str, session) -> dict:
    s = (res["summary"] or [{}])[0]
    total = s.get("revenue") or 0
    n = s.get("customers") or 0
    summary = {"customers": n, "revenue": num(total), "margin": num(s.get("margin") or 0),
               "margin_pct": share(s.get("margin") or 0, total), "orders": int(s.get("orders") or 0),
               "gini": num(s.get("gini"), 4) if n else None,
               "top20_customers": int(s.get("top20_customers") or 0),
               "top20_share": share(s.get("top20_revenue") or 0, total)}
    cls_rows = {c["abc"]: c for c in res["classes"]}
    classes = Table([("abc", "Class"), ("customers", "Customers"), ("customer_share", "Share of customers"),
                     ("revenue", "Revenue (EUR)"), ("revenue_share", "Share of revenue"), ("margin", "Margin (EUR)")])
    for k in "ABC":
        c = cls_rows.get(k, {"customers": 0, "revenue": 0, "margin": 0})
        classes.rows.append({"abc": k, "customers": c["customers"], "customer_share": share(c["customers"], n),
                             "revenue": num(c["revenue"] or 0), "revenue_share": share(c["revenue"] or 0, total),
                             "margin": num(c["margin"] or 0)})
    summary["abc"] = {k: cls_rows.get(k, {}).get("customers", 0) for k in "ABC"}
    lorenz = [[0.0, 0.0]] + [[round(x["i"] / x["n"], 4), round(float(x["cum"]) / float(x["total"]), 4)]
                             for x in sorted(res["lorenz"], key=lambda x: x["i"])]
    top = Table([("rank", "#"), ("code", "Code"), ("name", "Customer"), ("level", "Level"), ("region", "Region"),
                 ("revenue", "Revenue (EUR)"), ("margin", "Margin (EUR)"), ("orders", "Orders"), ("abc", "Class"),
                 ("revenue_share", "Share")],
                [{"rank": t["rn"], "customer_id": t["customer_id"], "code": t["code"], "name": t["name"],
                  "level": t["level"], "region": t["region"], "revenue": num(t["revenue"]),
                  "margin": num(t["margin"]), "orders": t["orders"], "abc": t["abc"],
                  "revenue_share": share(t["revenue"], total)} for t in sorted(res["tops"], key=lambda t: t["rn"])])

    def dim(rows, key_label):
        t = Table([("name", key_label), ("customers", "Customers"), ("revenue", "Revenue (EUR)"),
                   ("margin", "Margin (EUR)"), ("revenue_share", "Share of revenue")])
        for x in sorted(rows, key=lambda x: (-float(x["revenue"] or 0), str(x["name"]))):
            t.rows.append({"id": x["id"], "name": x["name"], "customers": x["customers"],
                           "revenue": num(x["revenue"]), "margin": num(x["margin"]),
                           "revenue_share": share(x["revenue"], total)})
        return t
    tables = {"top_customers": top, "abc": classes, "regions": dim(res["regions"], "Region"),
              "territories": dim(res["territories"], "Territory"), "branches": dim(res["branches"], "Service branch"),
              "account_managers": dim(res["owners"], "Account manager")}
    return {"report": "contribution", "params": p.as_dict(), "source": describe_source(session, src),
            "summary": summary, "tables": {k: v.as_json() for k, v in tables.items()},
            "charts": {"lorenz": lorenz}, "map": {"value": "revenue", "rows": tables["regions"].rows}}

