"""Report pages: `/reports` (catalogue) and one page per report with filters, charts
(Chart.js, served locally), tables, a choropleth map by region that drills down to the
region's customers, CSV/XLSX exports (through the API), a printable view and PDF."""
from __future__ import annotations

import json
import warnings
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, current_app, render_template, request, url_for
from flask_babel import gettext as _
from pydantic import ValidationError
from sqlalchemy import func, select

from geo_crm.analytics.common import default_period
from geo_crm.analytics.registry import CATALOGUE, ReportQuery, allowed, build_params, run
from geo_crm.analytics.revenue import freshness
from geo_crm.http import Forbidden, csp_nonce, current_scope, read_db, require
from geo_crm.models import Region, Territory, User

bp = Blueprint("reports", __name__)

MAP_FIELDS = {
    "contribution": [("revenue", "Revenue (EUR)"), ("customers", "Customers"), ("revenue_share", "Share")],
    "composition": [("customers", "Customers"), ("share", "Share")],
    "service": [("per_1000", "Complaints per 1,000"), ("complaints", "Complaints"), ("customers", "Customers")],
    "churn": [("churn_rate", "Churn rate"), ("lost", "Lost"), ("customers", "Customers")],
    "segments": [("grow_share", "Share grow"), ("grow", "Grow"), ("maintain", "Maintain"), ("develop", "Develop"),
                 ("drop", "Drop")],
}


@bp.get("/reports")
@require("report.read")
def index():
    scope = current_scope()
    reports = [spec for name, spec in CATALOGUE.items() if allowed(scope, name)]
    return render_template("reports/index.html", reports=reports, fresh=freshness(read_db()))


def _query_args() -> dict:
    out = {}
    for key in request.args:
        if key in ("print",):
            continue
        values = [v for v in request.args.getlist(key) if v != ""]
        if not values:
            continue
        out[key] = values if key == "level" else values[-1]
    return out


def _filter_options(session, scope) -> dict:
    regions = session.execute(select(Region.id, Region.name).where(Region.level == 1).order_by(Region.name)).all()
    territories = session.execute(select(Territory.id, Territory.name).where(scope.territory_filter())
                                  .order_by(Territory.name)).all()
    owners_q = select(User.id, func.coalesce(func.nullif(User.full_name, ""), User.username)) \
        .where(User.role == "account_manager", User.is_active.is_(True)).order_by(User.full_name)
    if scope.role == "account_manager":
        owners_q = owners_q.where(User.id == scope.user_id)
    return {"regions": regions, "territories": territories, "owners": session.execute(owners_q).all()}


def _regions_map(session, name: str, report: dict):
    """A choropleth of the report's per-region value, or None."""
    m_info = report.get("map")
    if not m_info or name not in MAP_FIELDS:
        return None
    from maps import base_map, choropleth, render_parts
    rows = {r.get("id"): r for r in m_info["rows"] if r.get("id") is not None}
    feats = []
    for rid, rname, gj in session.execute(select(Region.id, Region.name, func.ST_AsGeoJSON(Region.geom, 5))
                                          .where(Region.level == 1)):
        props = {"id": rid, "name": rname}
        for key, _label in MAP_FIELDS[name]:
            props[key] = rows.get(rid, {}).get(key)
        feats.append({"type": "Feature", "geometry": json.loads(gj), "properties": props})
    value = m_info["value"]
    distinct = {f["properties"].get(value) for f in feats if isinstance(f["properties"].get(value), (int, float))}
    if not distinct:
        return None
    cfg = current_app.config["GEO_CRM"]
    m = base_map(cfg.map_center, 5, tile_url=cfg.tile_url, tile_attribution=cfg.tile_attribution)
    label = dict(MAP_FIELDS[name])[value]
    with warnings.catch_warnings():  # mapclassify warns when values have fewer classes than k
        warnings.simplefilter("ignore", UserWarning)
        res = choropleth({"type": "FeatureCollection", "features": feats}, value, k=max(1, min(5, len(distinct))), name=label, title=label,
                         fields=[[k, v] for k, v in MAP_FIELDS[name]], record_url="/customers?region_id={id}")
    res.add_to(m)
    m.fit_bounds([[59.5, 19.5], [70.1, 31.6]])
    return render_parts(m, nonce=csp_nonce())


def _page(name: str):
    scope = current_scope()
    if not allowed(scope, name):
        raise Forbidden(name)
    session = read_db()
    spec = CATALOGUE[name]
    errors: list[str] = []
    args = _query_args()
    try:
        q = ReportQuery.model_validate({k: v for k, v in args.items() if k != "format"})
    except ValidationError as e:
        errors = [f"{'.'.join(map(str, d['loc'])) or 'filters'}: {d['msg']}" for d in e.errors(include_url=False)]
        q = ReportQuery()
    params = build_params(session, q)
    report = run(session, scope, name, q, params)
    export_args = {k: v for k, v in args.items() if k not in ("format", "table")} if not errors else {}
    qs = urlencode(export_args, doseq=True)
    exports = {"xlsx": url_for("api.reports_report_" + name) + "?" + urlencode({**export_args, "format": "xlsx"},
                                                                            doseq=True),
               "csv": {t: url_for("api.reports_report_" + name) + "?" + urlencode(
                   {**export_args, "format": "csv", "table": t}, doseq=True) for t in report["tables"]},
               "print": url_for(f"reports.{name}") + "?" + urlencode({**export_args, "print": 1}, doseq=True),
               "pdf": url_for("reports.pdf", name=name) + ("?" + qs if qs else "")}
    return render_template(f"reports/{name}.html", spec=spec, report=report, params=params, q=q, errors=errors,
                           options=_filter_options(session, scope), exports=exports,
                           map_parts=_regions_map(session, name, report),
                           printable=request.args.get("print") == "1",
                           default_from=default_period(params.date_to)[0], catalogue=CATALOGUE,
                           allowed_reports=[n for n in CATALOGUE if allowed(scope, n)])


def _register(name: str):
    def view():
        return _page(name)
    view.__name__ = name
    bp.add_url_rule(f"/reports/{name}", name, require("report.read")(view))


for _n in CATALOGUE:
    _register(_n)


@bp.get("/reports/<name>.pdf")
@require("report.read")
def pdf(name: str):
    """The printable page rendered to PDF by headless Chromium (print-to-PDF), logged in
    with the caller's own session cookie (so the PDF shows exactly what they see)."""
    if name not in CATALOGUE:
        abort(404)
    if not allowed(current_scope(), name):
        raise Forbidden(name)
    url = request.host_url.rstrip("/") + url_for(f"reports.{name}") + "?" + urlencode(
        {**{k: v for k, v in _query_args().items() if k not in ("format", "table")}, "print": 1}, doseq=True)
    cookie_name = current_app.config.get("SESSION_COOKIE_NAME", "session")
    cookie = request.cookies.get(cookie_name)
    if not cookie:
        abort(400)
    try:
        data = render_pdf(url, cookie_name, cookie, request.host_url)
    except Exception:  # browser missing or failed: say so, not 500
        current_app.logger.exception("PDF rendering failed")
        return render_template("error.html", status=503,
                               message=_("PDF rendering is unavailable; use the printable page.")), 503
    resp = Response(data, mimetype="application/pdf")
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}.pdf"'
    return resp


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]


def render_pdf(url: str, cookie_name: str, cookie: str, origin: str) -> bytes:
    """Print `url` to A4 PDF with Playwright on the system Chromium."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            ctx = browser.new_context()
            ctx.add_cookies([{"name": cookie_name, "value": cookie, "url": origin}])
            page = ctx.new_page()
            page.goto(url, wait_until="networkidle", timeout=30000)
            page.wait_for_selector("body[data-report-ready]", timeout=15000)
            return page.pdf(format="A4", print_background=True, landscape=True,
                            margin={"top": "12mm", "bottom": "12mm", "left": "10mm", "right": "10mm"})
        finally:
            browser.close()
