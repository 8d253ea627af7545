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

import numpy as np
from sqlalchemy import BigInteger, Integer, and_, cast, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import True_

from geo_crm.analytics.arrays import cents_to_eur, fetch_columns, group, sorted_unique, unique_first
from geo_crm.analytics.common import (ReportParams, Table, covers_everyone, customer_clauses, num, population,
                                      share)
from geo_crm.analytics.periods import edge_orders, mv_cum, per_customer, split_period, whole_month_columns
from geo_crm.analytics.revenue import choose_source, describe_source, period_revenue, views_as_of
from geo_crm.models import Branch, Customer, CustomerTerritory, Region, Territory, User
from geo_crm.security.scope import Scope

A_SHARE, B_SHARE = 0.8, 0.95
A_PCT, B_PCT = 80, 95  # the same thresholds in percent, for exact integer comparisons


def contribution(session: Session, scope: Scope, p: ReportParams, *, top: int = 20) -> dict:
    src = choose_source(session, p, need="period")
    if src == "mv_12m":
        rev_q, src = period_revenue(session, p)
        rev = rev_q.subquery("rev")
        ct = aliased(CustomerTerritory)  # own alias: never correlates with the filters' EXISTS
        # one narrow row per (customer, visible territory): ids and integer cents only
        stmt = (select(rev.c.customer_id, cast(rev.c.revenue * 100, BigInteger),
                       cast(rev.c.margin * 100, BigInteger), cast(rev.c.orders, BigInteger), *_attrs(ct))
                .join_from(rev, Customer, Customer.id == rev.c.customer_id)
                .outerjoin(ct, and_(ct.customer_id == rev.c.customer_id, *_visible_territory(ct, scope)))
                .where(*customer_clauses(scope, p), rev.c.revenue > 0))
        cols = fetch_columns(session, stmt, COLUMNS, whole_tables=covers_everyone(scope, p))
        live_days = None
    else:
        split = split_period(p.date_from, p.date_to, views_as_of(session) if src == "mv_cum" else None)
        cols = _period_columns(session, scope, p, split)
        live_days = split.live_days
        if split.months is None:
            src = "live"
    res = _figures(session, cols, top)
    return _shape(res, p, src, session, live_days)


COLUMNS = [("id", "int4"), ("rev", "int8"), ("margin", "int8"), ("orders", "int8"), ("region", "int4"),
           ("branch", "int4"), ("owner", "int4"), ("territory", "int4")]


def _attrs(ct) -> list:
    return [func.coalesce(Customer.region_id, -1), func.coalesce(Customer.service_branch_id, -1),
            func.coalesce(Customer.owner_id, -1), func.coalesce(ct.territory_id, -1)]


def _period_columns(session: Session, scope: Scope, p: ReportParams, split) -> dict:
    """The columns of COLUMNS (one row per customer and visible territory, revenue > 0)
    for any period: whole months from the prefix-sum view, edge days live (periods.py)."""
    everyone = covers_everyone(scope, p)
    parts = []
    if split.months is not None:
        ct = aliased(CustomerTerritory)
        w = whole_month_columns(split.months)
        stmt = (select(Customer.id, w["revenue"], w["margin"], w["orders"], *_attrs(ct))
                .join_from(mv_cum, Customer, Customer.id == mv_cum.c.customer_id)
                .outerjoin(ct, and_(ct.customer_id == Customer.id, *_visible_territory(ct, scope)))
                .where(*customer_clauses(scope, p)))   # zero rows drop out below (rev > 0)
        parts.append(fetch_columns(session, stmt, COLUMNS, whole_tables=everyone))
    edges = edge_orders(session, split.edges, None if everyone else (lambda col: col.in_(population(scope, p))))
    e_ids = sorted_unique(edges["id"])
    known = sorted_unique(parts[0]["id"]) if parts else np.zeros(0, np.int32)
    if len(known):
        at = np.minimum(np.searchsorted(known, e_ids), len(known) - 1)
        missing = e_ids[known[at] != e_ids]
    else:
        missing = e_ids
    if len(missing):
        # customers with orders only on the edge days: their attributes (visibility re-applied)
        ct = aliased(CustomerTerritory)
        zero = cast(literal(0), BigInteger)
        stmt = (select(Customer.id, zero, zero, zero, *_attrs(ct))
                .outerjoin(ct, and_(ct.customer_id == Customer.id, *_visible_territory(ct, scope)))
                .where(*customer_clauses(scope, p)))
        if len(missing) <= 20_000:
            stmt = stmt.where(Customer.id == func.any(literal([int(x) for x in missing], ARRAY(Integer))))
        extra = fetch_columns(session, stmt, COLUMNS, whole_tables=everyone and len(missing) > 20_000)
        at = np.minimum(np.searchsorted(missing, extra["id"]), len(missing) - 1)
        keep = missing[at] == extra["id"]
        parts.append({k: v[keep] for k, v in extra.items()})
    if not parts:
        return {name: np.zeros(0, np.int64) for name, _ in COLUMNS}
    cols = {k: np.concatenate([x[k] for x in parts]) for k in parts[0]}
    add = per_customer(e_ids, edges)
    if len(e_ids):
        pos = np.minimum(np.searchsorted(e_ids, cols["id"]), len(e_ids) - 1)
        hit = e_ids[pos] == cols["id"]
        for k in ("rev", "margin", "orders"):
            cols[k] = cols[k] + np.where(hit, add[k][pos], 0)
    keep = cols["rev"] > 0
    return {k: v[keep] for k, v in cols.items()}


def _visible_territory(ct, scope: Scope) -> list:
    """The territory rows the caller may see (no predicate when that is all of them)."""
    tf = scope.territory_filter()
    if isinstance(tf, True_):
        return []
    return [ct.territory_id.in_(select(Territory.id).where(tf))]


def _figures(session: Session, cols: dict, top: int) -> dict:
    """The same figures the report always had, from the fetched columns (see module doc)."""
    ids_all = cols["id"]
    ids, first = unique_first(ids_all)
    rev, mar, orders = cols["rev"][first], cols["margin"][first], cols["orders"][first]
    n = len(ids)
    res: dict = {"summary": [], "classes": [], "lorenz": [], "tops": [], "regions": [], "branches": [],
                 "owners": [], "territories": []}
    if n == 0:
        res["summary"] = [{"customers": 0, "revenue": None, "margin": None, "orders": None, "gini": None,
                           "top20_revenue": None, "top20_customers": None}]
        return res
    total = int(rev.sum())
    order = np.lexsort((ids, -rev))               # revenue desc, customer id asc
    r_sorted = rev[order]
    cum = np.cumsum(r_sorted)
    before = cum - r_sorted
    cls = np.where(before * 100 < A_PCT * total, 0, np.where(before * 100 < B_PCT * total, 1, 2))
    k20 = -(-n // 5)                               # ceil(0.2 n)
    asc = r_sorted[::-1]                           # ascending revenue, i = 1..n
    i = np.arange(1, n + 1, dtype=np.int64)
    s_ix = int(np.dot(i, asc)) if n * total < 2 ** 62 else sum(int(a) * int(b) for a, b in zip(i, asc))
    gini = 2 * s_ix / (n * total) - (n + 1) / n
    res["summary"] = [{"customers": n, "revenue": cents_to_eur(total), "margin": cents_to_eur(mar.sum()),
                       "orders": int(orders.sum()), "gini": gini, "top20_revenue": cents_to_eur(cum[k20 - 1]),
                       "top20_customers": k20}]
    m_sorted = mar[order]
    for c, label in enumerate("ABC"):
        sel = cls == c
        if sel.any():
            res["classes"].append({"abc": label, "customers": int(sel.sum()),
                                   "revenue": cents_to_eur(r_sorted[sel].sum()),
                                   "margin": cents_to_eur(m_sorted[sel].sum())})
    asc_cum = np.cumsum(asc)
    pts = np.nonzero((i * 100) // n > ((i - 1) * 100) // n)[0]
    res["lorenz"] = [{"i": int(i[j]), "n": n, "cum": cents_to_eur(asc_cum[j]), "total": cents_to_eur(total)}
                     for j in pts]
    tops = order[:top]
    names = _names(session, [int(ids[j]) for j in tops])
    for rank, j in enumerate(tops, start=1):
        nm = names.get(int(ids[j]), {})
        res["tops"].append({"customer_id": int(ids[j]), "code": nm.get("code"), "name": nm.get("name"),
                            "level": nm.get("level"), "region": nm.get("region"), "revenue": cents_to_eur(rev[j]),
                            "margin": cents_to_eur(mar[j]), "orders": int(orders[j]), "rn": rank,
                            "abc": "ABC"[cls[rank - 1]]})
    region_names = dict(session.execute(select(Region.id, Region.name)).all())
    branch_names = dict(session.execute(select(Branch.id, Branch.name)).all())
    user_names = dict(session.execute(select(User.id, func.coalesce(func.nullif(User.full_name, ""),
                                                                    User.username))).all())

    def by(key, names, none_label):
        uniq, counts, (rs, ms) = group(key, rev, mar)
        return [{"id": None if k < 0 else int(k), "name": none_label if k < 0 else names.get(int(k), none_label),
                 "customers": int(cnt), "revenue": cents_to_eur(r), "margin": cents_to_eur(m)}
                for k, cnt, r, m in zip(uniq, counts, rs, ms)]
    res["regions"] = by(cols["region"][first], region_names, "(no region)")
    res["branches"] = by(cols["branch"][first], branch_names, "(no branch)")
    res["owners"] = by(cols["owner"][first], user_names, "(unassigned)")
    terr = cols["territory"]
    inside = terr >= 0
    if inside.any():
        t_names = dict(session.execute(select(Territory.id, Territory.name)).all())
        uniq, counts, (rs, ms) = group(terr, cols["rev"], cols["margin"], mask=inside)
        res["territories"] = [{"id": int(k), "name": t_names.get(int(k)), "customers": int(cnt),
                               "revenue": cents_to_eur(r), "margin": cents_to_eur(m)}
                              for k, cnt, r, m in zip(uniq, counts, rs, ms)]
    return res


def _names(session: Session, ids: list[int]) -> dict[int, dict]:
    if not ids:
        return {}
    rows = session.execute(select(Customer.id, Customer.code, Customer.name, Customer.level,
                                  Region.name.label("region"))
                           .join(Region, Region.id == Customer.region_id, isouter=True)
                           .where(Customer.id.in_(ids))).all()
    return {r.id: dict(r._mapping) for r in rows}


def _shape(res: dict, p: ReportParams, src: str, session, live_days: int | None = None) -> dict:
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
    return {"report": "contribution", "params": p.as_dict(),
            "source": describe_source(session, src, live_days=live_days),
            "summary": summary, "tables": {k: v.as_json() for k, v in tables.items()},
            "charts": {"lorenz": lorenz}, "map": {"value": "revenue", "rows": tables["regions"].rows}}

