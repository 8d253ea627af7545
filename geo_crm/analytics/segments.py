"""Value segments and RFM.

Population: visible, filtered customers that are neither prospects nor lost.

* current value = revenue in the 12 months (365 days) to as_of (EUR);
* potential value (EUR over the next 12 months, a documented heuristic score):
      max(0, 12 × trend_slope)                      growth if the order trend continues
    + Σ open opportunities' amount × probability     weighted pipeline of the customer
    + max(0, industry_median × size_factor − current)  headroom against peers
  trend_slope: least-squares slope of revenue over twelve 365/12-day buckets (EUR per
  month, zero-filled); industry_median: median current value of the population's
  customers of the same industry with current > 0; size_factor by level: key 4,
  major 2, ordinary 1, small 0.5;
* split at the medians (percentile_cont 0.5) of current and potential value over the
  population. Tie rule: a value is HIGH when value >= median AND value > 0 (a value
  exactly at the median is high; zero is never high). grow = high current & high
  potential, maintain = high & low, develop = low & high, drop = low & low;
* RFM over the population's customers with at least one order in the 12 months:
  recency = days since the last order, frequency = orders, monetary = revenue.
  Score of x = 1 + floor(5 (rank − 1) / n), rank = SQL rank() ascending (ties share
  the lowest rank) with recency ranked by last order date so a more recent order
  scores higher; scores are quintiles 1..5 (5 best).
"""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np
from scipy.stats import rankdata
from sqlalchemy import BigInteger, Date, Float, Integer, case, cast, func, literal, select
from sqlalchemy.orm import Session

from geo_crm.analytics.arrays import PG_EPOCH, fetch_columns, from_date, percentile_cont, to_date
from geo_crm.analytics.common import ReportParams, Table, covers_everyone, customer_clauses, num, population, share
from geo_crm.analytics.periods import (_at, edge_orders, last_order_column, month_end, month_no, month_start,
                                       mv_cum, per_customer, split_period)
from geo_crm.analytics.revenue import customer_12m, describe_source, views_as_of
from geo_crm.models import Customer, Opportunity, Region
from geo_crm.security.scope import Scope

SEGMENTS = ("grow", "maintain", "develop", "drop")
SIZE_FACTOR = {"key": 4.0, "major": 2.0, "ordinary": 1.0, "small": 0.5}
SCATTER_POINTS = 2000


def segment_of(current: float, potential: float, med_current: float, med_potential: float) -> str:
    """The tie rule in Python (used for documentation/tests; SQL applies the same)."""
    hc = current >= med_current and current > 0
    hp = potential >= med_potential and potential > 0
    return {(True, True): "grow", (True, False): "maintain", (False, True): "develop",
            (False, False): "drop"}[(hc, hp)]


def _scores(session: Session, scope: Scope, p: ReportParams) -> dict:
    """Per-customer arrays of the population (see module doc): id, region, current,
    slope, growth, opp_weighted, headroom, potential, segment (index into SEGMENTS),
    orders, last order (days since 2000-01-01, -1 when none) and r/f/m (0 without
    orders in the 12 months); plus the medians and the source."""
    c12_q, src = customer_12m(session, p)
    live_days = None
    plan = _as_of_plan(session, p) if src == "live" else None
    opp = (select(Opportunity.customer_id,
                  func.sum(Opportunity.amount * Opportunity.probability / 100.0).label("weighted"))
           .where(scope.opportunity_filter(), Opportunity.status == "open", Opportunity.customer_id.is_not(None))
           .group_by(Opportunity.customer_id)).subquery("opp")
    size = cast(case(*[(Customer.level == k, literal(v)) for k, v in SIZE_FACTOR.items()], else_=literal(1.0)), Float)
    head = [Customer.id, func.coalesce(Customer.region_id, -1),
            # industry as a 64-bit hash (grouping key only; NULL industry is its own group)
            cast(func.coalesce(func.hashtextextended(Customer.industry, 0), 0), BigInteger),
            cast(func.coalesce(Customer.industry.is_(None), False), Integer)]
    types = [("id", "int4"), ("region", "int4"), ("industry", "int8"), ("industry_null", "int4")]
    if plan is None:
        c12 = c12_q.subquery("c12")
        stmt = (select(*head, cast(func.coalesce(c12.c.revenue, 0), Float),
                       cast(func.coalesce(c12.c.trend_slope, 0), Float),
                       cast(func.coalesce(opp.c.weighted, 0), Float), cast(func.coalesce(c12.c.orders, 0), Integer),
                       cast(func.coalesce(c12.c.last_order_date - literal(PG_EPOCH, Date), -1), Integer), size)
                .join(c12, c12.c.customer_id == Customer.id, isouter=True)
                .join(opp, opp.c.customer_id == Customer.id, isouter=True)
                .where(*customer_clauses(scope, p), Customer.status.not_in(("prospect", "lost"))))
        types = types + [("current", "float8"), ("slope", "float8"), ("opp_weighted", "float8"), ("orders", "int4"),
                         ("last", "int4"), ("size", "float8")]
        d = fetch_columns(session, stmt, types, whole_tables=covers_everyone(scope, p))
    else:
        # population, opportunities and the view's running totals in one merge-joined pass
        stmt = (select(*head, cast(func.coalesce(opp.c.weighted, 0), Float), size, *plan["cols"])
                .join(opp, opp.c.customer_id == Customer.id, isouter=True)
                .join(mv_cum, mv_cum.c.customer_id == Customer.id, isouter=True)
                .where(*customer_clauses(scope, p), Customer.status.not_in(("prospect", "lost"))))
        everyone = covers_everyone(scope, p)
        d = fetch_columns(session, stmt, types + [("opp_weighted", "float8"), ("size", "float8"), ("rev", "int8"),
                                                  ("s2", "int8"), ("orders", "int8"), ("last", "int4")],
                          whole_tables=everyone)
        order = np.argsort(d["id"], kind="stable")
        d = {k: v[order] for k, v in d.items()}
        _add_edges(session, plan, d, None if everyone else (lambda col: col.in_(population(scope, p))))
        d["current"] = d.pop("rev") / 100            # exact cents → nearest float, as numeric → float8
        d["slope"] = d.pop("s2") / 28600             # Σ (11 - 2 bucket) × cents / (2 × 100 × 143)
        src, live_days = "mv_cum", plan["live_days"]
    order = np.argsort(d["id"], kind="stable")
    d = {k: v[order] for k, v in d.items()}
    cur = d["current"]
    # industry medians of current > 0 (percentile_cont, as PostgreSQL computes it); the
    # customers without an industry form one more group, as in SQL GROUP BY
    key = np.where(d["industry_null"] == 1, 0, d["industry"])
    null_group = d["industry_null"] == 1
    med = np.zeros(len(cur))
    pos = cur > 0
    for is_null in (False, True):
        grp = null_group == is_null
        part = pos & grp
        if not part.any():
            continue
        uniq, inv = np.unique(key[part], return_inverse=True)
        vals = cur[part]
        srt = np.lexsort((vals, inv))
        vals, bounds = vals[srt], np.searchsorted(inv[srt], np.arange(len(uniq) + 1))
        medians = np.array([percentile_cont(vals[bounds[j]:bounds[j + 1]], 0.5) for j in range(len(uniq))])
        idx = np.minimum(np.searchsorted(uniq, key[grp]), len(uniq) - 1)
        med[grp] = np.where(uniq[idx] == key[grp], medians[idx], 0.0)
    growth = np.maximum(0.0, 12.0 * d["slope"])
    headroom = np.maximum(0.0, med * d["size"] - cur)
    potential = growth + d["opp_weighted"] + headroom
    mc, mp = percentile_cont(cur, 0.5), percentile_cont(potential, 0.5)
    if mc is None:
        seg = np.zeros(0, dtype=np.int64)
    else:
        hc = (cur >= mc) & (cur > 0)
        hp = (potential >= mp) & (potential > 0)
        seg = np.where(hc & hp, 0, np.where(hc, 1, np.where(hp, 2, 3)))
    r = np.zeros(len(cur), dtype=np.int64)
    f, m = r.copy(), r.copy()
    has = d["orders"] > 0
    nr = int(has.sum())
    if nr:
        for out, col in ((r, d["last"]), (f, d["orders"]), (m, cur)):
            out[has] = 1 + (5 * (rankdata(col[has], method="min").astype(np.int64) - 1)) // nr
    return {"id": d["id"], "region": d["region"], "current": cur, "slope": d["slope"], "growth": growth,
            "opp_weighted": d["opp_weighted"], "headroom": headroom, "potential": potential, "segment": seg,
            "orders": d["orders"], "last": d["last"], "r": r, "f": f, "m": m, "mc": mc, "mp": mp, "src": src,
            "live_days": live_days}


def customer_scores(session: Session, scope: Scope, p: ReportParams, *, limit: int | None = None) -> list[dict]:
    """Per customer: current, potential (and its parts), segment, and R/F/M scores
    (None without orders in the 12 months). Ordered by customer id."""
    s = _scores(session, scope, p)
    n = len(s["id"]) if not limit else min(limit, len(s["id"]))
    out = []
    for j in range(n):
        rated = s["r"][j] > 0
        out.append({"id": int(s["id"][j]), "current": float(s["current"][j]), "slope": float(s["slope"][j]),
                    "growth": float(s["growth"][j]), "opp_weighted": float(s["opp_weighted"][j]),
                    "headroom": float(s["headroom"][j]), "potential": float(s["potential"][j]),
                    "segment": SEGMENTS[s["segment"][j]], "r": int(s["r"][j]) if rated else None,
                    "f": int(s["f"][j]) if rated else None, "m": int(s["m"][j]) if rated else None})
    return out


def segments(session: Session, scope: Scope, p: ReportParams, *, top: int = 50) -> dict:
    s = _scores(session, scope, p)
    ids, cur, pot, seg = s["id"], s["current"], s["potential"], s["segment"]
    n = len(ids)
    res: dict = {"summary": [{"n": n, "median_current": s["mc"], "median_potential": s["mp"]}],
                 "by_seg": [], "by_region": [], "scatter": [], "tops": [], "grid": [], "mdist": [], "rfm_top": []}
    for k, name in enumerate(SEGMENTS):
        sel = seg == k
        if sel.any():
            res["by_seg"].append({"segment": name, "customers": int(sel.sum()), "current": float(cur[sel].sum()),
                                  "potential": float(pot[sel].sum())})
    if n:
        region_names = dict(session.execute(select(Region.id, Region.name)).all())
        regions, inv = np.unique(s["region"], return_inverse=True)
        counts = np.bincount(inv * 4 + seg, minlength=4 * len(regions)).reshape(len(regions), 4)
        for j, rid in enumerate(regions):
            res["by_region"].append({"id": None if rid < 0 else int(rid),
                                     "name": "(no region)" if rid < 0 else region_names.get(int(rid), "(no region)"),
                                     **{name: int(counts[j, k]) for k, name in enumerate(SEGMENTS)},
                                     "customers": int(counts[j].sum())})
        step = max(1, n // SCATTER_POINTS)
        pick = np.nonzero(ids % step == 0)[0][:SCATTER_POINTS]
        grow = np.nonzero(seg == 0)[0]
        grow = grow[np.lexsort((ids[grow], -pot[grow]))][:top]
        rated = np.nonzero(s["r"] > 0)[0]
        total = (s["r"] + s["f"] + s["m"])[rated]
        best = rated[np.lexsort((ids[rated], -cur[rated], -total))][:top]
        info = _customer_info(session, [int(ids[j]) for j in np.concatenate([pick, grow, best])])
        res["scatter"] = [{"id": int(ids[j]), "name": info[int(ids[j])]["name"], "current": float(cur[j]),
                           "potential": float(pot[j]), "segment": SEGMENTS[seg[j]]} for j in pick]
        res["tops"] = [{"id": int(ids[j]), **info[int(ids[j])], "current": float(cur[j]),
                        "growth": float(s["growth"][j]), "opp_weighted": float(s["opp_weighted"][j]),
                        "headroom": float(s["headroom"][j]), "potential": float(pot[j]), "segment": "grow"}
                       for j in grow]
        if len(rated):
            rr, ff = s["r"][rated], s["f"][rated]
            cell = rr * 10 + ff
            uniq, counts = np.unique(cell, return_counts=True)
            res["grid"] = [{"r": int(c // 10), "f": int(c % 10), "n": int(k)} for c, k in zip(uniq, counts)]
            uniq, counts = np.unique(s["m"][rated], return_counts=True)
            res["mdist"] = [{"m": int(c), "n": int(k)} for c, k in zip(uniq, counts)]
        res["rfm_top"] = [{"id": int(ids[j]), "code": info[int(ids[j])]["code"], "name": info[int(ids[j])]["name"],
                           "r": int(s["r"][j]), "f": int(s["f"][j]), "m": int(s["m"][j]), "current": float(cur[j]),
                           "orders": int(s["orders"][j]), "last_order_date": to_date(s["last"][j]).isoformat()}
                          for j in best]
    return _shape(res, p, session, s["src"], s["live_days"])


def _customer_info(session: Session, ids: list[int]) -> dict[int, dict]:
    """code, name, level, industry of a few customers (the listed rows only)."""
    if not ids:
        return {}
    rows = session.execute(select(Customer.id, Customer.code, Customer.name, Customer.level, Customer.industry)
                           .where(Customer.id.in_(sorted(set(ids))))).all()
    return {r.id: {"code": r.code, "name": r.name, "level": r.level, "industry": r.industry} for r in rows}


def _shape(res, p, session, src, live_days=None) -> dict:
    sm = (res["summary"] or [{}])[0]
    n = sm.get("n") or 0
    segs = {x["segment"]: x for x in res["by_seg"]}
    seg_t = Table([("segment", "Segment"), ("customers", "Customers"), ("share", "Share"),
                   ("current", "Current value (EUR)"), ("potential", "Potential value (EUR)")],
                  [{"segment": k, "customers": segs.get(k, {}).get("customers", 0),
                    "share": share(segs.get(k, {}).get("customers", 0), n),
                    "current": num(segs.get(k, {}).get("current") or 0),
                    "potential": num(segs.get(k, {}).get("potential") or 0)} for k in SEGMENTS])
    reg_t = Table([("name", "Region"), ("customers", "Customers")] + [(k, k) for k in SEGMENTS] +
                  [("grow_share", "Share grow")])
    for x in sorted(res["by_region"], key=lambda x: str(x["name"])):
        reg_t.rows.append({"id": x["id"], "name": x["name"], "customers": x["customers"],
                           **{k: x[k] for k in SEGMENTS}, "grow_share": share(x["grow"], x["customers"])})
    top_t = Table([("code", "Code"), ("name", "Customer"), ("level", "Level"), ("industry", "Industry"),
                   ("current", "Current (EUR)"), ("growth", "Trend growth"), ("opp_weighted", "Weighted opportunities"),
                   ("headroom", "Headroom"), ("potential", "Potential (EUR)")],
                  [{"customer_id": x["id"], "code": x["code"], "name": x["name"], "level": x["level"],
                    "industry": x["industry"], "current": num(x["current"]), "growth": num(x["growth"]),
                    "opp_weighted": num(x["opp_weighted"]), "headroom": num(x["headroom"]),
                    "potential": num(x["potential"])} for x in res["tops"]])
    grid = {(x["r"], x["f"]): x for x in res["grid"]}
    grid_t = Table([("r", "Recency score \\ Frequency score")] + [(f"f{f}", f"F{f}") for f in range(1, 6)])
    for r in range(5, 0, -1):
        grid_t.rows.append({"r": f"R{r}", **{f"f{f}": grid.get((r, f), {}).get("n", 0) for f in range(1, 6)}})
    mdist = {x["m"]: x["n"] for x in res["mdist"]}
    rfm_top = Table([("code", "Code"), ("name", "Customer"), ("r", "R"), ("f", "F"), ("m", "M"),
                     ("current", "Revenue 12 m (EUR)"), ("orders", "Orders"), ("last_order_date", "Last order")],
                    [{"customer_id": x["id"], "code": x["code"], "name": x["name"], "r": x["r"], "f": x["f"],
                      "m": x["m"], "current": num(x["current"]), "orders": x["orders"],
                      "last_order_date": x["last_order_date"]} for x in res["rfm_top"]])
    return {"report": "segments", "params": p.as_dict(), "source": describe_source(session, src, live_days=live_days),
            "summary": {"customers": n, "median_current": num(sm.get("median_current")),
                        "median_potential": num(sm.get("median_potential")),
                        **{k: segs.get(k, {}).get("customers", 0) for k in SEGMENTS},
                        "rfm_customers": sum(x["n"] for x in res["grid"])},
            "tables": {"segments": seg_t.as_json(), "by_region": reg_t.as_json(), "grow_customers": top_t.as_json(),
                       "rfm_grid": grid_t.as_json(), "rfm_top": rfm_top.as_json()},
            "charts": {"scatter": [{"x": num(x["current"]), "y": num(x["potential"]), "segment": x["segment"],
                                    "name": x["name"]} for x in res["scatter"]],
                       "monetary": {"labels": [str(k) for k in range(1, 6)],
                                    "values": [mdist.get(k, 0) for k in range(1, 6)]}},
            "map": {"value": "grow_share", "rows": reg_t.rows}}


def _as_of_plan(session: Session, p: ReportParams) -> dict | None:
    """How to compute the 12-month figures of `customer_12m` as of any date (exact) from
    the prefix-sum view plus live partial months, without aggregating every order per
    customer. With C(d) = a customer's cumulative revenue through day d and the bucket
    edges e_k = as_of - ceil(365 k / 12) (k = 0..12; bucket k is (e_k+1, e_k]):
        revenue = C(e_0) - C(e_12),
        Σ (11 - 2 bucket) × amount = 11 C(e_0) - 2 Σ_{k=1..11} C(e_k) + 11 C(e_12),
    so trend_slope = that sum / 2 / 143 (the view's definition). C(d) = the view's running
    total to the month before d's month (or to its as-of date) + the orders from there to
    d, read live; when d lies in the second half of a month the view holds whole, the
    running total to d's month - the orders after d in it (fewer days to read).
    Returns {"cols": SQL columns over `mv_cum` (rev cents, s2 = 2 × Σ weight × cents,
    orders, last order day up to as_of), "bounds", "coef", "live_days"}; None without
    the views."""
    view_as_of = views_as_of(session)
    if view_as_of is None or p.source == "live":
        return None
    as_of = p.as_of
    edges_d = [as_of - timedelta(days=-(-365 * k // 12)) for k in range(13)]
    coef = [11] + [-2] * 11 + [11]
    bounds = []   # per edge date: (view month to read or None, [(live day range, +1 | -1)])
    for j, d in enumerate(edges_d):
        sp = split_period(date(1900, 1, 1), d, view_as_of)
        m = month_no(d)
        if j > 0 and sp.edges and m < month_no(view_as_of) and (month_end(m) - d) < (d - month_start(m)):
            bounds.append((m, [((d + timedelta(days=1), month_end(m)), -1)]))
        else:
            bounds.append((sp.months[1] if sp.months else None, [(r, 1) for r in sp.edges]))
    c = mv_cum.c

    def roll(arr, j):
        m = bounds[j][0]
        return literal(0) if m is None else _at(arr, literal(m) - c.first_month + 1)
    s2 = sum((coef[j] * roll(c.revenue, j) for j in range(13)), literal(0))
    cols = [cast(roll(c.revenue, 0) - roll(c.revenue, 12), BigInteger), cast(s2, BigInteger),
            cast(roll(c.orders, 0) - roll(c.orders, 12), BigInteger),
            cast(last_order_column(bounds[0][0]) if bounds[0][0] is not None else literal(-1), Integer)]
    ranges = _merge([r for _, rs in bounds for r, _ in rs])
    return {"cols": cols, "bounds": bounds, "coef": coef, "ranges": ranges,
            "live_days": sum((b - a).days + 1 for a, b in ranges)}


def _add_edges(session: Session, plan: dict, d: dict, customer_in=None) -> None:
    """Add the live partial-month orders of `plan` to d["rev"], d["s2"], d["orders"],
    d["last"] (arrays aligned with the sorted d["id"])."""
    e = edge_orders(session, plan["ranges"], customer_in, margin=False)
    ids = d["id"]
    if not len(e["id"]) or not len(ids):
        return
    pos = np.minimum(np.searchsorted(ids, e["id"]), len(ids) - 1)
    ok = ids[pos] == e["id"]
    e, pos = {k: v[ok] for k, v in e.items()}, pos[ok]
    for name in ("rev", "s2", "orders", "last"):
        d[name] = d[name].astype(np.int64)
    for j, (_, rs) in enumerate(plan["bounds"]):
        for (lo, hi), sign in rs:
            inside = (e["day"] >= from_date(lo)) & (e["day"] <= from_date(hi))
            if not inside.any():
                continue
            part = per_customer(ids, {k: v[inside] for k, v in e.items()}, pos[inside])
            d["s2"] += sign * plan["coef"][j] * part["rev"]
            if j in (0, 12):
                w = sign * (1 if j == 0 else -1)
                d["rev"] += w * part["rev"]
                d["orders"] += w * part["orders"]
            if j == 0:                                  # always added ranges (see _as_of_plan)
                d["last"] = np.maximum(d["last"], part["last"])


def _merge(ranges):
    """Overlapping or adjacent inclusive date ranges merged (each order fetched once)."""
    out = []
    for a, b in sorted(set(ranges)):
        if out and a <= out[-1][1] + timedelta(days=1):
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
