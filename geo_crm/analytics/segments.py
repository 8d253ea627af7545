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

from sqlalchemy import Float, Integer, and_, case, cast, func, literal, select
from sqlalchemy.orm import Session

from geo_crm.analytics.common import ReportParams, Table, customer_clauses, num, share
from geo_crm.analytics.revenue import customer_12m, describe_source
from geo_crm.analytics.sqlutil import json_rows, run_json
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


def _ctes(session: Session, scope: Scope, p: ReportParams) -> dict:
    """The CTEs: base (population), pot (potential), meds (medians), seg (segment), rfm."""
    c12_q, src = customer_12m(session, p)
    c12 = c12_q.subquery("c12")
    opp = (select(Opportunity.customer_id,
                  func.sum(Opportunity.amount * Opportunity.probability / 100.0).label("weighted"))
           .where(scope.opportunity_filter(), Opportunity.status == "open", Opportunity.customer_id.is_not(None))
           .group_by(Opportunity.customer_id)).subquery("opp")
    size = case(*[(Customer.level == k, literal(v)) for k, v in SIZE_FACTOR.items()], else_=literal(1.0))
    base = (select(Customer.id, Customer.code, Customer.name, Customer.level, Customer.industry, Customer.region_id,
                   cast(func.coalesce(c12.c.revenue, 0), Float).label("current"),
                   func.coalesce(c12.c.trend_slope, 0).label("slope"),
                   cast(func.coalesce(opp.c.weighted, 0), Float).label("opp_weighted"),
                   func.coalesce(c12.c.orders, 0).label("orders"), c12.c.last_order_date, size.label("size_factor"))
            .join(c12, c12.c.customer_id == Customer.id, isouter=True)
            .join(opp, opp.c.customer_id == Customer.id, isouter=True)
            .where(*customer_clauses(scope, p), Customer.status.not_in(("prospect", "lost")))).cte("base")
    b = base.c
    ind = (select(b.industry, func.percentile_cont(0.5).within_group(b.current).label("median"))
           .where(b.current > 0).group_by(b.industry)).cte("ind")
    headroom = func.greatest(0.0, func.coalesce(ind.c.median, 0) * b.size_factor - b.current)
    growth = func.greatest(0.0, 12.0 * b.slope)
    pot = select(base, growth.label("growth"), headroom.label("headroom"),
                 (growth + b.opp_weighted + headroom).label("potential")) \
        .join(ind, ind.c.industry.is_not_distinct_from(b.industry), isouter=True).cte("pot")
    meds = select(func.percentile_cont(0.5).within_group(pot.c.current).label("mc"),
                  func.percentile_cont(0.5).within_group(pot.c.potential).label("mp")).select_from(pot).cte("meds")
    hc = and_(pot.c.current >= meds.c.mc, pot.c.current > 0)
    hp = and_(pot.c.potential >= meds.c.mp, pot.c.potential > 0)
    seg_expr = case((and_(hc, hp), "grow"), (hc, "maintain"), (hp, "develop"), else_="drop")
    seg = select(pot, seg_expr.label("segment")).select_from(pot).join(meds, literal(True)).cte("seg")
    s = seg.c
    rb = select(b.id, b.code, b.name, b.last_order_date, b.orders, b.current).where(b.orders > 0).cte("rb")
    n = func.count().over()

    def score(col):
        return cast(1 + func.floor(5.0 * (func.rank().over(order_by=col) - 1) / n), Integer)
    rfm = select(rb.c.id, rb.c.code, rb.c.name, rb.c.last_order_date, rb.c.orders, rb.c.current,
                 score(rb.c.last_order_date).label("r"), score(rb.c.orders).label("f"),
                 score(rb.c.current).label("m")).cte("rfm")
    return {"base": base, "pot": pot, "meds": meds, "seg": seg, "rfm": rfm, "src": src}


def customer_scores(session: Session, scope: Scope, p: ReportParams, *, limit: int | None = None) -> list[dict]:
    """Per customer: current, potential (and its parts), segment, and R/F/M scores
    (None without orders in the 12 months). Ordered by customer id."""
    c = _ctes(session, scope, p)
    s, r = c["seg"].c, c["rfm"].c
    q = (select(s.id, s.current, s.slope, s.growth, s.opp_weighted, s.headroom, s.potential, s.segment,
                r.r, r.f, r.m).select_from(c["seg"]).join(c["rfm"], c["rfm"].c.id == s.id, isouter=True)
         .order_by(s.id))
    if limit:
        q = q.limit(limit)
    return [dict(row._mapping) for row in session.execute(q)]


def segments(session: Session, scope: Scope, p: ReportParams, *, top: int = 50) -> dict:
    c = _ctes(session, scope, p)
    seg, pot, meds, rfm, src = c["seg"], c["pot"], c["meds"], c["rfm"], c["src"]
    s = seg.c
    n_all = select(func.count()).select_from(seg).scalar_subquery()
    summary = json_rows(select(func.count().label("n"), func.max(meds.c.mc).label("median_current"),
                               func.max(meds.c.mp).label("median_potential"))
                        .select_from(pot).join(meds, literal(True)))
    by_seg = json_rows(select(s.segment, func.count().label("customers"), func.sum(s.current).label("current"),
                              func.sum(s.potential).label("potential")).group_by(s.segment))
    by_region = json_rows(select(s.region_id.label("id"), func.coalesce(Region.name, "(no region)").label("name"),
                                 *[func.count().filter(s.segment == k).label(k) for k in SEGMENTS],
                                 func.count().label("customers"))
                          .select_from(seg).join(Region, Region.id == s.region_id, isouter=True)
                          .group_by(s.region_id, Region.name))
    step = func.greatest(1, n_all / SCATTER_POINTS)
    scatter = json_rows(select(s.id, s.name, s.current, s.potential, s.segment)
                        .where(func.mod(s.id, step) == 0).limit(SCATTER_POINTS))
    tops = json_rows(select(s.id, s.code, s.name, s.level, s.industry, s.current, s.growth, s.opp_weighted,
                            s.headroom, s.potential, s.segment)
                     .where(s.segment == "grow").order_by(s.potential.desc(), s.id).limit(top))
    rc = rfm.c
    grid = json_rows(select(rc.r, rc.f, func.count().label("n"), func.avg(rc.current).label("avg_m"))
                     .group_by(rc.r, rc.f))
    mdist = json_rows(select(rc.m, func.count().label("n")).group_by(rc.m))
    rfm_top = json_rows(select(rc.id, rc.code, rc.name, rc.r, rc.f, rc.m, rc.current, rc.orders, rc.last_order_date)
                        .order_by((rc.r + rc.f + rc.m).desc(), rc.current.desc(), rc.id).limit(top))
    res = run_json(session, summary=summary, by_seg=by_seg, by_region=by_region, scatter=scatter, tops=tops,
                   grid=grid, mdist=mdist, rfm_top=rfm_top)
    return _shape(res, p, session, src)


def _shape(res, p, session, src) -> dict:
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
    return {"report": "segments", "params": p.as_dict(), "source": describe_source(session, src),
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
