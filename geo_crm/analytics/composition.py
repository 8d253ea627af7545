"""Composition: customer counts and shares by level, status, industry, region,
territory and credit rating, and cross-tabs (level × region, status × level,
credit rating × level). A snapshot of the visible, filtered customers now: the
period filter does not apply. Territories may overlap (shares can add up to > 1).
"""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geo_crm.analytics.common import ReportParams, Table, customer_clauses, in_population, share
from geo_crm.analytics.revenue import describe_source
from geo_crm.analytics.sqlutil import json_rows, run_json
from geo_crm.models import Customer, CustomerTerritory, Region, Territory
from geo_crm.models.enums import CREDIT_RATINGS, CUSTOMER_LEVELS, CUSTOMER_STATUSES
from geo_crm.security.scope import Scope

DIMENSIONS = {"level": "Level", "status": "Status", "industry": "Industry", "region": "Region",
              "credit_rating": "Credit rating"}
CROSSTABS = (("level", "region"), ("status", "level"), ("credit_rating", "level"))


def composition(session: Session, scope: Scope, p: ReportParams) -> dict:
    # aggregate the narrow attributes first (an index-only scan of the covering index
    # ix_customer_report_attrs), name the regions afterwards
    dims = [Customer.level, Customer.status, func.coalesce(Customer.industry, "(none)").label("industry"),
            func.coalesce(Customer.credit_rating, "(none)").label("credit_rating"), Customer.region_id]
    agg = select(*dims, func.count().label("n")).where(*customer_clauses(scope, p)).group_by(*dims).subquery("agg")
    g = agg.c
    cube = json_rows(select(g.level, g.status, g.industry, g.credit_rating, g.region_id,
                            func.coalesce(Region.name, "(no region)").label("region"), g.n)
                     .join_from(agg, Region, Region.id == g.region_id, isouter=True))
    terr = json_rows(select(Territory.id, Territory.name, func.count().label("n"))
                     .select_from(CustomerTerritory).join(Territory, Territory.id == CustomerTerritory.territory_id)
                     .where(scope.territory_filter(), in_population(CustomerTerritory.customer_id, scope, p))
                     .group_by(Territory.id, Territory.name))
    res = run_json(session, cube=cube, terr=terr)
    cells = res["cube"]
    total = sum(c["n"] for c in cells)

    def counts(key):
        out: dict = {}
        for c in cells:
            out[c[key]] = out.get(c[key], 0) + c["n"]
        return out

    order = {"level": list(CUSTOMER_LEVELS), "status": list(CUSTOMER_STATUSES),
             "credit_rating": list(CREDIT_RATINGS) + ["(none)"]}
    tables: dict[str, Table] = {}
    for key, label in DIMENSIONS.items():
        cnt = counts(key)
        keys = [k for k in order.get(key, []) if k in cnt] + sorted(k for k in cnt if k not in order.get(key, []))
        if key not in order:
            keys = sorted(cnt, key=lambda k: (-cnt[k], str(k)))
        t = Table([(key, label), ("customers", "Customers"), ("share", "Share")])
        for k in keys:
            row = {key: k, "customers": cnt[k], "share": share(cnt[k], total)}
            if key == "region":
                row["id"] = next((c["region_id"] for c in cells if c["region"] == k), None)
            t.rows.append(row)
        tables[f"by_{key}"] = t
    tt = Table([("territory", "Territory"), ("customers", "Customers"), ("share", "Share")])
    for x in sorted(res["terr"], key=lambda x: (-x["n"], x["name"])):
        tt.rows.append({"id": x["id"], "territory": x["name"], "customers": x["n"], "share": share(x["n"], total)})
    tables["by_territory"] = tt
    for rk, ck in CROSSTABS:
        rows_keys = [r[rk] for r in tables[f"by_{rk}"].rows]
        col_keys = [r[ck] for r in tables[f"by_{ck}"].rows]
        grid: dict = {}
        for c in cells:
            grid[(c[rk], c[ck])] = grid.get((c[rk], c[ck]), 0) + c["n"]
        t = Table([(rk, DIMENSIONS[rk] + " \\ " + DIMENSIONS[ck])] + [(f"c{i}", str(k)) for i, k in
                                                                          enumerate(col_keys)] + [("total", "Total")])
        for r in rows_keys:
            row = {rk: r}
            for i, k in enumerate(col_keys):
                row[f"c{i}"] = grid.get((r, k), 0)
            row["total"] = sum(grid.get((r, k), 0) for k in col_keys)
            t.rows.append(row)
        tables[f"{rk}_x_{ck}"] = t
    return {"report": "composition", "params": p.as_dict(), "source": describe_source(session, "live"),
            "summary": {"customers": total, "industries": len(tables["by_industry"].rows),
                        "regions": len(tables["by_region"].rows)},
            "tables": {k: v.as_json() for k, v in tables.items()},
            "charts": {k: {"labels": [str(r[k]) for r in tables[f"by_{k}"].rows],
                           "values": [r["customers"] for r in tables[f"by_{k}"].rows]}
                       for k in ("level", "status", "industry", "credit_rating")},
            "map": {"value": "customers", "rows": [{"id": r.get("id"), "name": r["region"],
                                                    "customers": r["customers"], "share": r["share"]}
                                                   for r in tables["by_region"].rows]}}
