"""Sales pipeline: open opportunities by stage and probability, the weighted pipeline,
conversion rate and average time per stage.

Definitions:
* the open pipeline is a snapshot (status 'open' now; the period does not apply):
  weighted pipeline = Σ amount × probability / 100 (EUR);
* won/lost counts and conversion use opportunities closed (closed_at) in the period:
  conversion = won / (won + lost);
* time per stage (days): from `opportunity_stage_change`, a stay in a stage runs from
  the change into it to the next change of the same opportunity; only stays that
  ended in the period count (the current, unfinished stay does not);
* visibility is `Scope.opportunity_filter()`; the account-manager filter is the
  opportunity's assignee; region, territory and level filters keep only
  opportunities of matching customers (prospects have no customer and drop out).
"""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geo_crm.analytics.common import ReportParams, Table, customer_clauses, num, share
from geo_crm.analytics.revenue import describe_source
from geo_crm.analytics.service import period_bounds
from geo_crm.analytics.sqlutil import json_rows, run_json
from geo_crm.models import Customer, Opportunity, OpportunityStageChange, User
from geo_crm.models.enums import OPPORTUNITY_STAGES
from geo_crm.security.scope import Scope

OPEN_STAGES = ("lead", "qualified", "proposal", "negotiation")


def _opportunity_clauses(scope: Scope, p: ReportParams) -> list:
    out = [scope.opportunity_filter()]
    if p.owner_id is not None:
        out.append(Opportunity.assignee_id == p.owner_id)
    if p.region_id is not None or p.territory_id is not None or p.level or p.customer_ids is not None:
        out.append(Opportunity.customer_id.in_(
            select(Customer.id).where(*customer_clauses(scope, p.with_(owner_id=None)))))
    return out


def pipeline(session: Session, scope: Scope, p: ReportParams) -> dict:
    start, end = period_bounds(p)
    O = Opportunity
    opps = select(O.id, O.stage, O.status, O.amount, O.probability, O.assignee_id, O.closed_at) \
        .where(*_opportunity_clauses(scope, p)).cte("opps")
    o = opps.c
    weighted = o.amount * o.probability / 100.0
    open_by_stage = json_rows(select(o.stage, func.count().label("n"), func.sum(o.amount).label("amount"),
                                     func.sum(weighted).label("weighted"))
                              .where(o.status == "open").group_by(o.stage))
    by_prob = json_rows(select(o.probability, func.count().label("n"), func.sum(o.amount).label("amount"),
                               func.sum(weighted).label("weighted"))
                        .where(o.status == "open").group_by(o.probability))
    closed = json_rows(select(o.status, func.count().label("n"), func.sum(o.amount).label("amount"))
                       .where(o.status.in_(("won", "lost")), o.closed_at >= start, o.closed_at < end)
                       .group_by(o.status))
    by_owner = json_rows(select(o.assignee_id.label("id"),
                                func.coalesce(func.nullif(User.full_name, ""), User.username, "(unassigned)").label("name"),
                                func.count().filter(o.status == "open").label("open"),
                                func.coalesce(func.sum(weighted).filter(o.status == "open"), 0).label("weighted"),
                                func.count().filter(o.status == "won", o.closed_at >= start, o.closed_at < end).label("won"),
                                func.count().filter(o.status == "lost", o.closed_at >= start, o.closed_at < end).label("lost"))
                         .select_from(opps).join(User, User.id == o.assignee_id, isouter=True)
                         .group_by(o.assignee_id, User.full_name, User.username))
    S = OpportunityStageChange
    stays = (select(S.opportunity_id, S.to_stage.label("stage"), S.changed_at.label("entered"),
                    func.lead(S.changed_at).over(partition_by=S.opportunity_id, order_by=(S.changed_at, S.id))
                    .label("left"))
             .where(S.opportunity_id.in_(select(o.id)))).subquery("stays")
    days = func.extract("epoch", stays.c.left - stays.c.entered) / 86400.0
    stage_time = json_rows(select(stays.c.stage, func.count().label("n"), func.avg(days).label("avg_days"),
                                  func.percentile_cont(0.5).within_group(days).label("median_days"))
                           .where(stays.c.left.is_not(None), stays.c.left >= start, stays.c.left < end)
                           .group_by(stays.c.stage))
    res = run_json(session, open_by_stage=open_by_stage, by_prob=by_prob, closed=closed, by_owner=by_owner,
                   stage_time=stage_time)
    st = {x["stage"]: x for x in res["open_by_stage"]}
    cl = {x["status"]: x for x in res["closed"]}
    tm = {x["stage"]: x for x in res["stage_time"]}
    stage_t = Table([("stage", "Stage"), ("opportunities", "Opportunities"), ("amount", "Amount (EUR)"),
                     ("weighted", "Weighted (EUR)"), ("avg_days", "Average days in stage"),
                     ("median_days", "Median days"), ("stays", "Completed stays")])
    for s in OPPORTUNITY_STAGES:
        src = st.get(s) if s in OPEN_STAGES else cl.get(s)
        stage_t.rows.append({"stage": s, "opportunities": (src or {}).get("n", 0),
                             "amount": num((src or {}).get("amount") or 0),
                             "weighted": num((src or {}).get("weighted") or 0) if s in OPEN_STAGES else None,
                             "avg_days": num(tm.get(s, {}).get("avg_days")),
                             "median_days": num(tm.get(s, {}).get("median_days")),
                             "stays": tm.get(s, {}).get("n", 0)})
    prob_t = Table([("probability", "Probability %"), ("opportunities", "Opportunities"),
                    ("amount", "Amount (EUR)"), ("weighted", "Weighted (EUR)")],
                   [{"probability": x["probability"], "opportunities": x["n"], "amount": num(x["amount"]),
                     "weighted": num(x["weighted"])} for x in sorted(res["by_prob"], key=lambda x: x["probability"])])
    owner_t = Table([("name", "Account manager"), ("open", "Open"), ("weighted", "Weighted (EUR)"), ("won", "Won"),
                     ("lost", "Lost"), ("conversion", "Conversion")],
                    [{"id": x["id"], "name": x["name"], "open": x["open"], "weighted": num(x["weighted"]),
                      "won": x["won"], "lost": x["lost"], "conversion": share(x["won"], x["won"] + x["lost"])}
                     for x in sorted(res["by_owner"], key=lambda x: -float(x["weighted"] or 0))])
    won, lost = cl.get("won", {}).get("n", 0), cl.get("lost", {}).get("n", 0)
    summary = {"open": sum(x["n"] for x in st.values()),
               "open_amount": num(sum(float(x["amount"] or 0) for x in st.values())),
               "weighted_pipeline": num(sum(float(x["weighted"] or 0) for x in st.values())),
               "won": won, "lost": lost, "conversion": share(won, won + lost),
               "won_amount": num(cl.get("won", {}).get("amount") or 0)}
    return {"report": "pipeline", "params": p.as_dict(), "source": describe_source(session, "live"),
            "summary": summary,
            "tables": {"by_stage": stage_t.as_json(), "by_probability": prob_t.as_json(),
                       "by_account_manager": owner_t.as_json()},
            "charts": {"stages": {"labels": list(OPEN_STAGES),
                                  "amount": [num((st.get(s) or {}).get("amount") or 0) for s in OPEN_STAGES],
                                  "weighted": [num((st.get(s) or {}).get("weighted") or 0) for s in OPEN_STAGES]},
                       "stage_days": {"labels": list(OPEN_STAGES),
                                      "values": [num(tm.get(s, {}).get("avg_days")) for s in OPEN_STAGES]}},
            "map": None}
