"""Report analytics on a small hand-built dataset with answers computed independently
here (numpy/scipy, other formulas than the SQL), isolated from the sample by passing
an explicit customer-id restriction. Plus: materialised views = live queries."""
from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest
from scipy.stats import rankdata
from sqlalchemy import func, select, text

from geo_crm.analytics.churn import churn
from geo_crm.analytics.common import ReportParams, default_period
from geo_crm.analytics.composition import composition
from geo_crm.analytics.contribution import contribution
from geo_crm.analytics.export import safe_cell, to_csv
from geo_crm.analytics.periods import Split, month_no, split_period
from geo_crm.analytics.pipeline import pipeline
from geo_crm.analytics.revenue import VIEWS, choose_source, refresh_views, views_as_of
from geo_crm.analytics.segments import SIZE_FACTOR, customer_scores, segment_of, segments
from geo_crm.analytics.service import service
from geo_crm.models import Customer, User
from geo_crm.security.scope import Scope

UTC = timezone.utc
P_FROM, P_TO = date(2026, 1, 1), date(2026, 6, 30)
SYSTEM = Scope.system()

# key: (level, status, credit, [(order_date, amount, cost, status)])
CUSTOMERS = {
    "T1": ("ordinary", "active", "AAA", [("2026-02-10", 5000, 3000, "delivered")]),
    "T2": ("ordinary", "active", "A", [("2026-03-15", 1000, 700, "delivered"), ("2026-04-15", 2000, 1300, "confirmed")]),
    "T3": ("ordinary", "active", "A", [("2026-02-20", 1000, 900, "delivered")]),
    "T4": ("ordinary", "active", "BB", [("2026-05-05", 500, 100, "delivered")]),
    "T5": ("ordinary", "active", None, [("2026-06-01", 500, 600, "delivered")]),
    "T6": ("ordinary", "active", None, [("2025-12-31", 7000, 5000, "delivered"), ("2026-03-01", 9999, 0, "cancelled"),
                                         ("2026-03-02", 8888, 0, "draft")]),
    "T7": ("ordinary", "active", "AA", [("2026-06-30", 1000, 500, "delivered")]),
    "T8": ("small", "prospect", "AA", []),
    "T9": ("small", "lost", None, []),
}


def ts(s: str, hours: float = 0) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC) + timedelta(hours=hours)


@pytest.fixture()
def world(db_session):
    s = db_session
    users = dict(s.execute(select(User.username, User.id)).all())
    ids = {}
    for k, (level, status, credit, _) in CUSTOMERS.items():
        ids[k] = s.execute(text(
            "INSERT INTO customer (code, name, level, status, credit_rating, industry, owner_id, geom, geocode_quality)"
            " VALUES (:c, :n, :l, :s, :r, 'testind', :o, ST_SetSRID(ST_MakePoint(24.94, 60.17), 4326), 'exact')"
            " RETURNING id"),
            {"c": f"TAN-{k}", "n": f"Analytics {k}", "l": level, "s": status, "r": credit,
             "o": users["account"]}).scalar()
    n = 0
    for k, (_, _, _, orders) in CUSTOMERS.items():
        for d, amount, cost, st in orders:
            n += 1
            oid = s.execute(text(
                "INSERT INTO sales_order (number, customer_id, order_date, status, total_amount, total_cost) "
                "VALUES (:n, :c, :d, :s, :a, :k) RETURNING id"),
                {"n": f"TAN{n:05d}", "c": ids[k], "d": d, "s": st, "a": amount, "k": cost}).scalar()
            s.execute(text("INSERT INTO order_line (order_id, product_id, quantity, unit_price, unit_cost, amount) "
                           "VALUES (:o, (SELECT min(id) FROM product), 1, :a, :k, :a)"),
                      {"o": oid, "a": amount, "k": cost})
    agent = users["service"]
    # service records: (customer, type, status, created, assign_h, resolve_h, ratings[(rating, at)])
    recs = [("T1", "complaint", "resolved", "2026-03-01", 1, 10, [(2, "2026-03-02"), (4, "2026-03-05")]),
            ("T2", "repair", "archived", "2026-03-01", 2, 20, [(5, "2026-03-03")]),
            ("T3", "complaint", "resolved", "2026-03-01", 3, 30, [(1, "2026-03-04")]),
            ("T4", "repair", "in_progress", "2026-03-01", 4, None, []),
            ("T5", "consultation", "resolved", "2026-04-01", 10, 100, [(3, "2026-04-10")]),
            ("T6", "repair", "new", "2026-04-01", None, None, []),
            ("T1", "complaint", "archived", "2025-12-01", 1, 2, [(1, "2025-12-02")])]  # before the period
    for k, typ, st, created, ah, rh, ratings in recs:
        rid = s.execute(text(
            "INSERT INTO service_record (type, customer_id, request_text, status, assignee_id, created_at, "
            "assigned_at, handled_at) VALUES (:t, :c, 'x', :s, :a, :cr, :as, :h) RETURNING id"),
            {"t": typ, "c": ids[k], "s": st, "a": agent if ah is not None else None, "cr": ts(created),
             "as": ts(created, ah) if ah is not None else None,
             "h": ts(created, rh) if rh is not None else None}).scalar()
        for rating, at in ratings:
            s.execute(text("INSERT INTO service_rating (service_record_id, rating, rated_at) VALUES (:r, :g, :t)"),
                      {"r": rid, "g": rating, "t": ts(at, 12)})
    # churn alerts on a controlled clock
    for k, detected, status, decided, closed in [
            ("T1", "2026-01-15", "recovered", "2026-02-01", "2026-02-20"),
            ("T2", "2026-02-10", "confirmed_lost", "2026-03-05", None),
            ("T3", "2026-03-01", "warning", None, None),
            ("T4", "2026-05-20", "under_recovery", "2026-05-25", None),
            ("T5", "2026-07-15", "warning", None, None)]:
        s.execute(text("INSERT INTO churn_alert (customer_id, detected_at, status, decided_at, closed_at) "
                       "VALUES (:c, :d, :s, :dd, :cl)"),
                  {"c": ids[k], "d": ts(detected), "s": status, "dd": ts(decided) if decided else None,
                   "cl": ts(closed) if closed else None})
    # opportunities with stage history
    opps = [("T1", "proposal", "open", 50, 10000, None,
             [(None, "lead", "2026-01-01"), ("lead", "qualified", "2026-01-11"), ("qualified", "proposal", "2026-01-31")]),
            ("T2", "lead", "open", 10, 2000, None, [(None, "lead", "2026-02-01")]),
            ("T3", "won", "won", 100, 4000, "2026-03-10",
             [(None, "lead", "2026-02-01"), ("lead", "qualified", "2026-02-05"), ("qualified", "won", "2026-03-10")]),
            ("T3", "lost", "lost", 0, 3000, "2026-04-01", []),
            ("T2", "won", "won", 100, 1500, "2026-05-01", []),
            ("T1", "lost", "lost", 0, 800, "2025-12-01", [])]
    for k, stage, status, prob, amount, closed, changes in opps:
        oid = s.execute(text(
            "INSERT INTO opportunity (source, customer_id, summary, probability, amount, stage, status, closed_at, "
            "assignee_id) VALUES ('web', :c, 'deal', :p, :a, :st, :s, :cl, :u) RETURNING id"),
            {"c": ids[k], "p": prob, "a": amount, "st": stage, "s": status, "cl": ts(closed) if closed else None,
             "u": users["account"]}).scalar()
        for frm, to, at in changes:
            s.execute(text("INSERT INTO opportunity_stage_change (opportunity_id, from_stage, to_stage, changed_at) "
                           "VALUES (:o, :f, :t, :a)"), {"o": oid, "f": frm, "t": to, "a": ts(at)})
    s.flush()
    return ids


def params(world, keys, date_from=P_FROM, date_to=P_TO, **kw) -> ReportParams:
    return ReportParams(date_from=date_from, date_to=date_to, customer_ids=tuple(world[k] for k in keys),
                        source="live", **kw)


ALL = list(CUSTOMERS)


# -- contribution --------------------------------------------------------------------------
def gini_mean_difference(x) -> float:
    x = np.asarray(x, dtype=float)
    return float(np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean()))


def test_contribution_known_distribution(db_session, world):
    r = contribution(db_session, SYSTEM, params(world, ["T1", "T2", "T3", "T4", "T5", "T6"]))
    s = r["summary"]
    revenues = [5000, 3000, 1000, 500, 500]       # T6: order before the period, cancelled and draft ones excluded
    assert s["customers"] == 5 and s["revenue"] == 10000 and s["orders"] == 6
    assert s["margin"] == 2000 + 1000 + 100 + 400 - 100
    assert s["gini"] == pytest.approx(gini_mean_difference(revenues), abs=1e-4)
    assert s["top20_customers"] == 1 and s["top20_share"] == 0.5
    # ABC: before-share 0, .5 → A; .8 (not < .8) → B; .9 → B; .95 (not < .95) → C; ties by id
    top = {row["code"]: row for row in r["tables"]["top_customers"]["rows"]}
    assert {k: top[f"TAN-{k}"]["abc"] for k in ["T1", "T2", "T3", "T4", "T5"]} == \
        {"T1": "A", "T2": "A", "T3": "B", "T4": "B", "T5": "C"}
    assert s["abc"] == {"A": 2, "B": 2, "C": 1}
    abc = {row["abc"]: row for row in r["tables"]["abc"]["rows"]}
    assert abc["A"]["revenue_share"] == 0.8 and abc["C"]["revenue"] == 500
    # Lorenz: cumulative ascending shares
    asc = np.sort(revenues)
    expect = [[0.0, 0.0]] + [[(i + 1) / 5, float(c)] for i, c in enumerate(np.cumsum(asc) / asc.sum())]
    assert r["charts"]["lorenz"] == [[pytest.approx(a), pytest.approx(b)] for a, b in expect]
    # per area and account manager
    regions = r["tables"]["regions"]["rows"]
    assert len(regions) == 1 and regions[0]["revenue"] == 10000 and regions[0]["revenue_share"] == 1.0
    assert regions[0]["name"] == db_session.execute(text(
        "SELECT r.name FROM customer c JOIN region r ON r.id = c.region_id WHERE c.id = :i"), {"i": world["T1"]}).scalar()
    assert [row["customers"] for row in r["tables"]["account_managers"]["rows"]] == [5]
    assert r["source"]["kind"] == "live"


def test_contribution_filters_and_period(db_session, world):
    r = contribution(db_session, SYSTEM, params(world, ALL, date_from=date(2026, 4, 1)))
    assert r["summary"]["revenue"] == 2000 + 500 + 500 + 1000   # T2 April, T4, T5, T7
    assert contribution(db_session, SYSTEM, params(world, ALL, level=("key",)))["summary"]["customers"] == 0
    empty = contribution(db_session, SYSTEM, params(world, ALL, date_from=date(2020, 1, 1), date_to=date(2020, 1, 31)))
    assert empty["summary"]["customers"] == 0 and empty["summary"]["gini"] is None
    assert empty["charts"]["lorenz"] == [[0.0, 0.0]]


# -- composition ------------------------------------------------------------------------------
def test_composition_counts_and_crosstab(db_session, world):
    r = composition(db_session, SYSTEM, params(world, ALL))
    by = lambda t, k: {row[k]: row["customers"] for row in r["tables"][t]["rows"]}  # noqa: E731
    assert by("by_level", "level") == {"ordinary": 7, "small": 2}
    assert by("by_status", "status") == {"active": 7, "prospect": 1, "lost": 1}
    assert by("by_credit_rating", "credit_rating") == {"AAA": 1, "AA": 2, "A": 2, "BB": 1, "(none)": 3}
    assert r["tables"]["by_level"]["rows"][0]["share"] == round(7 / 9, 4)
    xt = r["tables"]["status_x_level"]
    labels = {c["key"]: c["label"] for c in xt["columns"]}
    row = next(x for x in xt["rows"] if x["status"] == "active")
    assert {labels[k]: v for k, v in row.items() if k.startswith("c")} == {"ordinary": 7, "small": 0}
    assert row["total"] == 7


# -- service -------------------------------------------------------------------------------------
def test_service_times_ratings_reopen(db_session, world):
    r = service(db_session, SYSTEM, params(world, ALL))
    s = r["summary"]
    assign = [1, 2, 3, 4, 10]
    resolve = [10, 20, 30, 100]
    assert s["requests"] == 6 and s["assigned"] == 5 and s["resolved"] == 4
    assert s["assign_hours_median"] == pytest.approx(np.percentile(assign, 50), abs=0.01)
    assert s["assign_hours_p90"] == pytest.approx(np.percentile(assign, 90), abs=0.01)
    assert s["resolve_hours_median"] == pytest.approx(np.median(resolve), abs=0.01)
    assert s["resolve_hours_p90"] == pytest.approx(np.percentile(resolve, 90), abs=0.01)
    assert (s["rated_records"], s["reopened_records"], s["reopen_rate"]) == (4, 2, 0.5)
    assert [row["count"] for row in r["tables"]["satisfaction"]["rows"]] == [1, 1, 1, 1, 1]
    trend = {row["month"]: row for row in r["tables"]["trend"]["rows"]}
    assert trend["2026-03"]["ratings"] == 4 and trend["2026-03"]["average"] == 3.0 and trend["2026-03"]["low"] == 2
    assert trend["2026-04"]["average"] == 3.0 and "2025-12" not in trend
    types = {row["type"]: row for row in r["tables"]["by_type_status"]["rows"]}
    assert types["complaint"]["resolved"] == 2 and types["repair"]["total"] == 3
    agents = r["tables"]["agents"]["rows"]
    assert len(agents) == 1 and (agents[0]["assigned"], agents[0]["open"], agents[0]["resolved"]) == (5, 1, 4)
    compl = r["tables"]["complaints_by_region"]["rows"]
    assert len(compl) == 1 and compl[0]["complaints"] == 2 and compl[0]["customers"] == 9
    assert compl[0]["per_1000"] == pytest.approx(2 / 9 * 1000, abs=0.01)


# -- churn ------------------------------------------------------------------------------------------
def test_churn_counts_on_a_controlled_clock(db_session, world):
    early = churn(db_session, SYSTEM, params(world, ALL, date_to=date(2026, 4, 30)))
    m = {row["month"]: row for row in early["tables"]["monthly"]["rows"]}
    assert list(m) == ["2026-01", "2026-02", "2026-03", "2026-04"]
    assert [m[k]["warnings"] for k in m] == [1, 1, 1, 0]
    assert m["2026-02"]["recoveries"] == 1 and m["2026-03"]["losses"] == 1
    assert (early["summary"]["warnings"], early["summary"]["recoveries"], early["summary"]["losses"]) == (3, 1, 1)
    # revenue at risk: open alerts detected by the as-of date (T3) → T3's 12-month revenue
    assert early["summary"]["open_alerts"] == 1 and early["summary"]["revenue_at_risk"] == 1000
    late = churn(db_session, SYSTEM, params(world, ALL))            # as of 2026-06-30
    assert late["summary"]["warnings"] == 4                         # T4 in May; T5 (July) is after the clock
    assert late["summary"]["open_alerts"] == 2 and late["summary"]["revenue_at_risk"] == 1500
    # churn rate: 1 loss / 8 non-prospect customers
    assert late["summary"]["churn_rate"] == round(1 / 8, 4)
    lv = {row["name"]: row for row in late["tables"]["by_level"]["rows"]}
    assert lv["ordinary"]["lost"] == 1 and lv["ordinary"]["churn_rate"] == round(1 / 7, 4)


def test_not_ordered_for_n_months(db_session, world):
    def listed(months):
        r = churn(db_session, SYSTEM, params(world, ALL), inactive_months=months)
        return [row["code"] for row in r["tables"]["inactive"]["rows"]], r["summary"]["inactive_customers"]
    # cutoff 2025-12-30: T6's last real order 2025-12-31 is not older (cancelled/draft orders don't count)
    assert listed(6) == ([], 0)
    assert listed(5) == (["TAN-T6"], 1)                              # cutoff 2026-01-30
    assert listed(4) == (["TAN-T6", "TAN-T1", "TAN-T3"], 3)          # cutoff 2026-02-28, oldest first


# -- value segments and RFM ----------------------------------------------------------------------------
def test_segment_tie_rule():
    assert segment_of(100, 50, 100, 50) == "grow"        # exactly at both medians: high
    assert segment_of(99.99, 50, 100, 50) == "develop"
    assert segment_of(100, 49.99, 100, 50) == "maintain"
    assert segment_of(0, 0, 0, 0) == "drop"              # zero is never high, even at a zero median


def _expected_scores(world, as_of=P_TO):
    keys = ["T1", "T2", "T3", "T4", "T5", "T6", "T7"]   # T8 prospect, T9 lost: not in the population
    current, buckets, last, freq = {}, {}, {}, {}
    for k in keys:
        y = np.zeros(12)
        orders = [(date.fromisoformat(d), a) for d, a, _, st in CUSTOMERS[k][3] if st in ("delivered", "confirmed")]
        inwin = [(d, a) for d, a in orders if as_of - timedelta(days=365) < d <= as_of]
        for d, a in inwin:
            y[11 - math.floor((as_of - d).days * 12 / 365)] += a
        current[k] = float(sum(a for _, a in inwin))
        buckets[k] = y
        last[k] = max(d for d, _ in orders)
        freq[k] = len(inwin)
    ind_median = float(np.median([v for v in current.values() if v > 0]))
    weighted = {"T1": 10000 * 0.5, "T2": 2000 * 0.1}
    pot = {}
    for k in keys:
        slope = np.polyfit(np.arange(12), buckets[k], 1)[0]
        pot[k] = max(0.0, 12 * slope) + weighted.get(k, 0) + max(0.0, ind_median * SIZE_FACTOR["ordinary"] - current[k])
    return keys, current, pot, last, freq


def test_segments_membership_at_the_median(db_session, world):
    keys, current, pot, _, _ = _expected_scores(world)
    mc, mp = np.median(list(current.values())), np.median(list(pot.values()))
    assert mc == 1000 and current["T3"] == current["T7"] == 1000     # two customers exactly at the median
    rows = {r["id"]: r for r in customer_scores(db_session, SYSTEM, params(world, ALL))}
    assert set(rows) == {world[k] for k in keys}
    for k in keys:
        got = rows[world[k]]
        assert got["current"] == pytest.approx(current[k])
        assert got["potential"] == pytest.approx(pot[k], abs=1e-6), k
        hc = current[k] >= mc and current[k] > 0
        hp = pot[k] >= mp and pot[k] > 0
        assert got["segment"] == {(1, 1): "grow", (1, 0): "maintain", (0, 1): "develop", (0, 0): "drop"}[(hc, hp)], k
    assert rows[world["T3"]]["segment"] in ("grow", "maintain")     # at the current median → high current
    rep = segments(db_session, SYSTEM, params(world, ALL))
    assert rep["summary"]["customers"] == 7
    assert rep["summary"]["median_current"] == 1000 and rep["summary"]["median_potential"] == pytest.approx(mp, abs=0.01)
    counts = {r["segment"]: r["customers"] for r in rep["tables"]["segments"]["rows"]}
    assert counts == {sg: sum(1 for r in rows.values() if r["segment"] == sg)
                      for sg in ("grow", "maintain", "develop", "drop")}


def test_rfm_quintiles(db_session, world):
    keys, current, _, last, freq = _expected_scores(world)
    keys = [k for k in keys if freq[k] > 0]
    n = len(keys)

    def score(values):
        ranks = rankdata(values, method="min")
        return [1 + math.floor(5 * (r - 1) / n) for r in ranks]
    r_ = score([last[k].toordinal() for k in keys])
    f_ = score([freq[k] for k in keys])
    m_ = score([current[k] for k in keys])
    rows = {r["id"]: r for r in customer_scores(db_session, SYSTEM, params(world, ALL))}
    for i, k in enumerate(keys):
        got = rows[world[k]]
        assert (got["r"], got["f"], got["m"]) == (r_[i], f_[i], m_[i]), k
    assert rows[world["T7"]]["r"] == 5 and rows[world["T2"]]["f"] == 5 and rows[world["T4"]]["m"] == 1
    rep = segments(db_session, SYSTEM, params(world, ALL))
    assert rep["summary"]["rfm_customers"] == n


# -- pipeline ----------------------------------------------------------------------------------------------
def test_pipeline_weighted_conversion_stage_time(db_session, world):
    r = pipeline(db_session, SYSTEM, params(world, ["T1", "T2", "T3"]))
    s = r["summary"]
    assert s["open"] == 2 and s["weighted_pipeline"] == 10000 * 0.5 + 2000 * 0.1
    assert (s["won"], s["lost"]) == (2, 1) and s["conversion"] == round(2 / 3, 4)   # the Dec-2025 loss is outside
    st = {row["stage"]: row for row in r["tables"]["by_stage"]["rows"]}
    assert st["lead"]["avg_days"] == pytest.approx(np.mean([10, 4])) and st["lead"]["stays"] == 2
    assert st["qualified"]["avg_days"] == pytest.approx(np.mean([20, 33]))
    assert st["proposal"]["stays"] == 0 and st["proposal"]["opportunities"] == 1
    assert st["won"]["opportunities"] == 2
    by_prob = {row["probability"]: row for row in r["tables"]["by_probability"]["rows"]}
    assert by_prob[50]["weighted"] == 5000 and by_prob[10]["weighted"] == 200
    # the account-manager filter is the assignee; another manager has none of these
    other = pipeline(db_session, SYSTEM, params(world, ["T1", "T2", "T3"], owner_id=-5))
    assert other["summary"]["open"] == 0


# -- visibility inside the domain -----------------------------------------------------------------------------
def test_scope_restricts_every_report(db_session, world):
    nobody = Scope(role="account_manager", user_id=-1)
    p = params(world, ALL)
    assert contribution(db_session, nobody, p)["summary"]["customers"] == 0
    assert composition(db_session, nobody, p)["summary"]["customers"] == 0
    assert service(db_session, nobody, p)["summary"]["requests"] == 0
    assert churn(db_session, nobody, p)["summary"]["warnings"] == 0
    assert segments(db_session, nobody, p)["summary"]["customers"] == 0
    assert pipeline(db_session, nobody, p)["summary"]["open"] == 0


# -- materialised views agree with the live queries ------------------------------------------------------------
def test_materialised_views_match_live(db_session):
    assert views_as_of(db_session) is None                   # never refreshed in the test database
    today = db_session.execute(text("SELECT current_date")).scalar()
    frm, to = default_period(today)
    live = ReportParams(date_from=frm, date_to=to, source="live")
    assert choose_source(db_session, live.with_(source="auto"), need="period") == "live"
    refresh_views(db_session, concurrently=False)
    assert views_as_of(db_session) == today
    auto = live.with_(source="auto")
    assert choose_source(db_session, auto, need="period") == "mv_12m"
    for fn in (contribution, churn, segments):
        a, b = fn(db_session, SYSTEM, live), fn(db_session, SYSTEM, auto)
        assert b["source"]["kind"] == "materialized"
        assert a["summary"] == b["summary"] and a["tables"] == b["tables"], fn.__name__
    # any other period: whole months from the prefix-sum view + live edge days, equal to live
    for frm, to, kind in [(date(2026, 1, 1), date(2026, 6, 30), "materialized"),   # whole months
                          (date(2026, 3, 15), date(2026, 10, 31), "mixed"),        # partial first month
                          (date(2025, 7, 1), date(2026, 6, 30), "materialized"),
                          (date(2025, 12, 10), date(2026, 2, 14), "mixed"),        # crosses a year boundary
                          (date(2026, 5, 3), date(2026, 5, 20), "live"),           # inside one month
                          (date(2026, 10, 5), today, "mixed"),                     # the as-of month is whole
                          (date(2026, 9, 1), today + timedelta(days=40), "mixed")]:  # days after as_of: live
        p = ReportParams(date_from=frm, date_to=to, source="auto")
        a = contribution(db_session, SYSTEM, p.with_(source="live"))
        b = contribution(db_session, SYSTEM, p)
        assert b["source"]["kind"] == kind, (frm, to)
        assert a["summary"] == b["summary"] and a["tables"] == b["tables"], (frm, to)
        assert a["summary"]["revenue"] > 0
        reg = db_session.execute(text("SELECT min(region_id) FROM customer")).scalar()
        a = contribution(db_session, SYSTEM, p.with_(source="live", region_id=reg, level=("key", "major")))
        b = contribution(db_session, SYSTEM, p.with_(region_id=reg, level=("key", "major")))
        assert a["summary"] == b["summary"] and a["tables"] == b["tables"], (frm, to)
        a = segments(db_session, SYSTEM, p.with_(source="live"))
        b = segments(db_session, SYSTEM, p)
        assert a["summary"] == b["summary"] and a["tables"] == b["tables"], (frm, to)
        for months in (1, 3, 6):
            a = churn(db_session, SYSTEM, p.with_(source="live"), inactive_months=months)
            b = churn(db_session, SYSTEM, p, inactive_months=months)
            assert a["summary"] == b["summary"] and a["tables"] == b["tables"], (frm, to, months)
    # the prefix-sum path filters through the caller's scope like the live one
    regional = Scope.for_user(db_session.execute(select(User).where(User.username == "regional")).scalar_one())
    p = ReportParams(date_from=date(2026, 3, 15), date_to=date(2026, 10, 20), source="auto")
    for fn in (contribution, churn, segments):
        a, b = fn(db_session, regional, p.with_(source="live")), fn(db_session, regional, p)
        assert b["source"]["kind"] == "mixed"
        assert a["summary"] == b["summary"] and a["tables"] == b["tables"], fn.__name__
        assert b["summary"] != fn(db_session, SYSTEM, p)["summary"], fn.__name__   # a real restriction
    # a second refresh runs CONCURRENTLY (needs the unique indexes) and logs the time
    refresh_views(db_session, concurrently=True)
    assert db_session.execute(text("SELECT count(*) FROM report_refresh")).scalar() == len(VIEWS)


def test_split_period_into_whole_months_and_edges():
    A = date(2026, 11, 25)
    assert split_period(date(2026, 3, 15), date(2026, 10, 31), A) == \
        Split((month_no(date(2026, 4, 1)), month_no(date(2026, 10, 1))), ((date(2026, 3, 15), date(2026, 3, 31)),))
    assert split_period(date(2025, 12, 10), date(2026, 2, 14), A) == \
        Split((month_no(date(2026, 1, 1)),) * 2, ((date(2025, 12, 10), date(2025, 12, 31)),
                                                   (date(2026, 2, 1), date(2026, 2, 14))))
    assert split_period(date(2026, 5, 3), date(2026, 5, 20), A) == Split(None, ((date(2026, 5, 3), date(2026, 5, 20)),))
    # the as-of month is whole when the period reaches as_of; later days are live
    s = split_period(date(2026, 11, 1), date(2026, 12, 31), A)
    assert s.months == (month_no(A),) * 2 and s.edges == ((date(2026, 11, 26), date(2026, 12, 31)),)
    assert split_period(date(2026, 11, 1), date(2026, 11, 24), A).months is None   # A's month is not complete
    assert split_period(date(2026, 1, 1), date(2026, 12, 31), None).months is None  # no views: all live
    assert split_period(date(2026, 12, 1), date(2026, 12, 31), A).months is None
    assert split_period(date(2024, 2, 1), date(2024, 2, 29), A).edges == ()        # leap February, whole


def test_custom_periods_exact_on_hand_built_orders(db_session, world):
    """Edge days live + whole months from the refreshed prefix-sum view = hand-summed orders,
    for a period inside one month, one crossing a year boundary and month-aligned ones."""
    refresh_views(db_session, concurrently=False)
    cases = [((date(2026, 3, 2), date(2026, 3, 31)), 1000, 1),                        # T2 03-15; draft/cancelled out
             ((date(2025, 12, 15), date(2026, 3, 20)), 7000 + 5000 + 1000 + 1000, 4),  # year boundary
             ((date(2025, 12, 31), date(2026, 1, 31)), 7000, 1),                       # one day + whole January
             ((date(2026, 2, 1), date(2026, 4, 30)), 5000 + 1000 + 1000 + 2000, 3),    # whole months only
             ((date(2026, 4, 16), date(2026, 6, 30)), 500 + 500 + 1000, 3)]            # T2's 04-15 just outside
    for (frm, to), revenue, customers in cases:
        p = params(world, ALL, date_from=frm, date_to=to).with_(source="auto")
        r = contribution(db_session, SYSTEM, p)
        assert (r["summary"]["revenue"], r["summary"]["customers"]) == (revenue, customers), (frm, to)
        live = contribution(db_session, SYSTEM, p.with_(source="live"))
        assert live["summary"] == r["summary"] and live["tables"] == r["tables"], (frm, to)
    # churn as of other dates: revenue at risk and lapsed customers as the live SQL computes them
    for to in (date(2026, 4, 30), date(2026, 6, 30), date(2026, 6, 14)):
        for months in (4, 5, 6):
            p = params(world, ALL, date_to=to).with_(source="auto")
            a = churn(db_session, SYSTEM, p, inactive_months=months)
            assert a["source"]["kind"] == "mixed"
            b = churn(db_session, SYSTEM, p.with_(source="live"), inactive_months=months)
            assert a["summary"] == b["summary"] and a["tables"] == b["tables"], (to, months)
    assert churn(db_session, SYSTEM, params(world, ALL).with_(source="auto"))["summary"]["revenue_at_risk"] == 1500
    # value segments as of other dates: trend buckets from the view's running totals + live partial months
    for to in (date(2026, 6, 30), date(2026, 6, 14), date(2026, 3, 1), date(2026, 11, 30)):
        p = params(world, ALL, date_to=to).with_(source="auto")
        a = {r["id"]: r for r in customer_scores(db_session, SYSTEM, p)}
        b = {r["id"]: r for r in customer_scores(db_session, SYSTEM, p.with_(source="live"))}
        assert a.keys() == b.keys()
        for cid in a:
            assert a[cid] == pytest.approx(b[cid]), (to, cid)
        ra, rb = segments(db_session, SYSTEM, p), segments(db_session, SYSTEM, p.with_(source="live"))
        assert ra["source"]["kind"] == "mixed"
        assert ra["summary"] == rb["summary"] and ra["tables"] == rb["tables"], to
    # an order entered after the refresh on an edge day counts at once (edges are live)
    db_session.execute(text(
        "INSERT INTO sales_order (number, customer_id, order_date, status, total_amount, total_cost) "
        "VALUES ('TANX1', :c, '2026-03-25', 'delivered', 250, 100)"), {"c": world["T4"]})
    r = contribution(db_session, SYSTEM, params(world, ALL, date_from=date(2026, 3, 2), date_to=date(2026, 3, 31))
                     .with_(source="auto"))
    assert r["summary"]["revenue"] == 1250 and r["summary"]["margin"] == 300 + 150
    # the scope still applies on both paths
    nobody = Scope(role="account_manager", user_id=-1)
    p = params(world, ALL, date_from=date(2025, 12, 15), date_to=date(2026, 3, 20)).with_(source="auto")
    assert contribution(db_session, nobody, p)["summary"]["customers"] == 0


def test_export_is_formula_safe():
    t = {"columns": [{"key": "a", "label": "A"}, {"key": "b", "label": "B"}],
         "rows": [{"a": "=HYPERLINK(\"http://x\")", "b": -5.5}, {"a": "@SUM(A1)", "b": 3}, {"a": "plain", "b": None}]}
    out = to_csv(t).splitlines()
    assert out[0] == "A,B" and out[1].startswith("\"'=HYPERLINK") and out[1].endswith(",-5.5")
    assert out[2] == "'@SUM(A1),3" and out[3] == "plain,"
    assert safe_cell("+1") == "'+1" and safe_cell(-1) == -1 and safe_cell("\tx") == "'\tx"


def test_a_timeout_in_a_binary_copy_is_sqlalchemys_operational_error(db_session):
    """fetch_columns reads with COPY on the driver connection; a statement timeout there
    is the same SQLAlchemy OperationalError (57014) as in any other statement, so the app
    answers 422 query_too_expensive rather than a 500."""
    from sqlalchemy.exc import OperationalError

    from geo_crm.analytics.arrays import fetch_columns
    slow = select(Customer.id).where(func.pg_sleep(0.01).is_not(None))
    sp = db_session.begin_nested()
    db_session.execute(text("SET LOCAL statement_timeout = 1"))
    err = None
    try:
        fetch_columns(db_session, slow, [("id", "int4")])
    except OperationalError as e:
        err = e
    sp.rollback()
    assert err is not None and err.orig.pgcode == "57014"
