"""Delivery planning pages: `/routes` (plan form, progress, routes on the map, stop table)
and `/routes/<id>` (detail with exports, manual stop moves and re-planning).

Plans run in the background (see geo_crm.routing.jobs); the page shows progress by
polling `GET /api/v1/routes/<id>` (static/js/routes.js) and reloads when done.
"""
from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from geo_crm.customers.filters import CustomerFilter
from geo_crm.http import csp_nonce, current_scope, database, db, require
from geo_crm.models import Branch, Region, Territory, Vehicle
from geo_crm.routing import exports, jobs
from geo_crm.routing.persist import EditError, list_plans, move_stops, plan_detail
from geo_crm.routing.planner import PlanInputError, PlanRequest

bp = Blueprint("routes", __name__)
STATUS_LABELS = {"queued": "queued", "solving": "solving", "planned": "planned", "failed": "failed"}


def _background() -> bool:
    cfg = current_app.config
    return bool(cfg.get("ROUTES_BACKGROUND", not cfg.get("TESTING")))


def _branches(session, scope):
    q = select(Branch.id, Branch.code, Branch.name).order_by(Branch.id)
    if scope.role == "logistics":
        q = q.where(Branch.id == scope.branch_id)
    return session.execute(q).all()


def _map_parts(detail: dict):
    from maps import render_parts
    cfg = current_app.config["GEO_CRM"]
    m = exports.build_map(detail, tile_url=cfg.tile_url, tile_attribution=cfg.tile_attribution,
                          center=cfg.map_center)
    return render_parts(m, nonce=csp_nonce())


def _int(v, default=None):
    try:
        return int(v) if v not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _form_defaults(session, scope) -> dict:
    branches = _branches(session, scope)
    return {"branch": str(branches[0][0]) if branches else "", "date": (date.today() + timedelta(days=1)).isoformat(),
            "source": "orders", "mode": "auto", "time_limit": "10", "max_vehicles": "", "customer_ids": "",
            "level": "", "region_id": "", "territory_id": "", "q": ""}


def _render(form: dict, errors: list[dict], detail: dict | None, status: int = 200):
    s, scope = db(), current_scope()
    branches = _branches(s, scope)
    bid = _int(form.get("branch"))
    vehicles = s.execute(select(Vehicle.id, Vehicle.name, Vehicle.capacity).where(
        Vehicle.branch_id == bid, Vehicle.active.is_(True)).order_by(Vehicle.id)).all() if bid else []
    regions = s.execute(select(Region.id, Region.name).order_by(Region.name)).all()
    territories = s.execute(select(Territory.id, Territory.name).where(scope.territory_filter())
                            .order_by(Territory.name)).all()
    return render_template("routes/plans.html", form=form, errors=errors, branches=branches, vehicles=vehicles,
                           regions=regions, territories=territories, detail=detail,
                           map_parts=_map_parts(detail) if detail and detail["status"] == "planned" else None,
                           recent=list_plans(s, scope, limit=15), can_plan=scope.can("route.plan")), status


@bp.get("/routes")
@require("route.read")
def plans():
    s, scope = db(), current_scope()
    form = _form_defaults(s, scope)
    detail = None
    pid = _int(request.args.get("plan"))
    if pid:
        detail = plan_detail(s, scope, pid)   # NotFound → 404
        p = detail["params"] or {}
        form.update(branch=str((p.get("branch_ids") or [""])[0]), date=p.get("plan_date", form["date"]),
                    source=p.get("source", "orders"), mode=p.get("mode", "auto"),
                    time_limit=str(int(p.get("time_limit_s", 10))),
                    max_vehicles="" if p.get("max_vehicles") is None else str(p["max_vehicles"]),
                    customer_ids=",".join(str(c) for c in p.get("customer_ids") or []))
        for k in ("level", "region_id", "territory_id", "q"):
            v = (p.get("customer_filter") or {}).get(k)
            form[k] = ",".join(v) if isinstance(v, list) else ("" if v is None else str(v))
    elif request.args.get("branch"):
        form["branch"] = request.args["branch"]
    return _render(form, [], detail)


@bp.post("/routes")
@require("route.plan")
def plan_submit():
    s, scope = db(), current_scope()
    f = request.form
    form = {k: (f.get(k) or "").strip() for k in _form_defaults(s, scope)}
    errors: list[dict] = []
    try:
        plan_date = date.fromisoformat(form["date"])
    except ValueError:
        errors.append({"field": "date", "problem": _("Enter a date as YYYY-MM-DD.")})
    tl = _int(form["time_limit"], None) if form["time_limit"] else 10
    if tl is None or not 1 <= tl <= 600:
        errors.append({"field": "time_limit", "problem": _("Time limit must be 1–600 seconds.")})
    mv = _int(form["max_vehicles"]) if form["max_vehicles"] else None
    if form["max_vehicles"] and (mv is None or mv < 0):
        errors.append({"field": "max_vehicles", "problem": _("Enter a whole number of vehicles.")})
    bid = _int(form["branch"])
    if bid is None:
        errors.append({"field": "branch", "problem": _("Choose a branch.")})
    if form["mode"] not in ("auto", "network", "haversine"):
        errors.append({"field": "mode", "problem": _("Unknown mode.")})
    if form["source"] not in ("orders", "filter", "customers"):
        errors.append({"field": "source", "problem": _("Unknown stop source.")})
    ids: list[int] = []
    if form["source"] == "customers":
        try:
            ids = [int(x) for x in form["customer_ids"].replace(";", ",").split(",") if x.strip()]
        except ValueError:
            errors.append({"field": "customer_ids", "problem": _("Customer ids must be numbers.")})
        if not ids and not errors:
            errors.append({"field": "customer_ids", "problem": _("List at least one customer id.")})
    cf = None
    if form["source"] == "filter":
        cf = {k: form[k] for k in ("level", "region_id", "territory_id", "q") if form[k]}
        try:
            CustomerFilter.model_validate(cf)
        except Exception:
            errors.append({"field": "filter", "problem": _("Invalid customer filter.")})
    if errors:
        return _render(form, errors, None, 422)
    req = PlanRequest(plan_date=plan_date, branch_ids=[bid], source=form["source"], customer_filter=cf,
                      customer_ids=ids, max_vehicles=mv, mode=form["mode"], time_limit_s=float(tl))
    background = _background()
    try:
        plan = jobs.start_plan(s, scope, req, session_factory=database().Session, background=background)
    except PlanInputError as e:
        s.rollback()
        if e.status == 404 and e.field == "branch":
            errors.append({"field": "branch", "problem": _("Unknown branch.")})
        else:
            errors.append({"field": e.field, "problem": e.problem})
        return _render(form, errors, None, 403 if e.status == 403 else 422)
    if not background:
        s.commit()
    return redirect(url_for("routes.plans", plan=plan.id))


@bp.get("/routes/<int:plan_id>")
@require("route.read")
def detail(plan_id: int):
    d = plan_detail(db(), current_scope(), plan_id)
    return render_template("routes/detail.html", detail=d,
                           map_parts=_map_parts(d) if d["status"] == "planned" else None,
                           can_plan=current_scope().can("route.plan"), formats=list(exports.FORMATS))


@bp.post("/routes/<int:plan_id>/move")
@require("route.plan")
def move(plan_id: int):
    s = db()
    f = request.form
    target = f.get("route_id", "")
    move = {"stop_id": _int(f.get("stop_id")), "route_id": None if target in ("", "none") else _int(target),
            "position": _int(f.get("position"))}
    try:
        move_stops(s, current_scope(), plan_id, [move], expected_version=_int(f.get("version")))
    except EditError as e:
        s.rollback()
        flash(_("Could not move the stop: %(p)s", p=e.problem), "error")
        return redirect(url_for("routes.detail", plan_id=plan_id))
    s.commit()
    flash(_("Stop moved; ETAs and totals recomputed."), "ok")
    return redirect(url_for("routes.detail", plan_id=plan_id))


@bp.post("/routes/<int:plan_id>/replan")
@require("route.plan")
def replan(plan_id: int):
    s = db()
    background = _background()
    try:
        jobs.replan(s, current_scope(), plan_id, {"force": request.form.get("force") == "1"},
                    session_factory=database().Session, background=background)
    except (PlanInputError, EditError) as e:
        s.rollback()
        flash(_("Could not re-plan: %(p)s", p=getattr(e, "problem", str(e))), "error")
        return redirect(url_for("routes.detail", plan_id=plan_id))
    if not background:
        s.commit()
    return redirect(url_for("routes.plans", plan=plan_id))

