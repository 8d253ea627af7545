"""Reports API: `/api/v1/reports/<name>` for contribution, composition, service, churn,
segments and pipeline, as JSON, CSV (one table) or XLSX (all tables)."""
from __future__ import annotations

from flask import Response

from geo_crm.analytics import export
from geo_crm.analytics.registry import CATALOGUE, ReportQuery, allowed, build_params, run
from geo_crm.api.framework import ApiError, operation, validation_error
from geo_crm.customers.filters import FilterError
from geo_crm.http import Forbidden, current_scope, read_db

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def render(report: dict, q: ReportQuery, name: str) -> Response | dict:
    stamp = report["params"]["date_to"]
    if q.format == "csv":
        tables = report["tables"]
        key = q.table or next(iter(tables))
        if key not in tables:
            raise validation_error("table", f"unknown table; one of: {', '.join(tables)}")
        resp = Response(export.to_csv(tables[key]), mimetype="text/csv")
        resp.headers["Content-Disposition"] = f'attachment; filename="{name}-{key}-{stamp}.csv"'
        return resp
    if q.format == "xlsx":
        resp = Response(export.to_xlsx(report), mimetype=XLSX)
        resp.headers["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.xlsx"'
        return resp
    return report


def _make(name: str):
    spec = CATALOGUE[name]

    def handler(query: ReportQuery):
        scope = current_scope()
        if not allowed(scope, name):
            raise Forbidden(name)
        session = read_db()
        try:
            report = run(session, scope, name, query, build_params(session, query))
        except FilterError as e:
            raise validation_error(e.field, e.problem)
        except ValueError as e:
            raise ApiError(409, "not_ready", str(e))
        return render(report, query, name)
    handler.__name__ = f"report_{name}"
    handler.__doc__ = spec.description + " Figures cover only the caller's visible customers."
    operation(f"/reports/{name}", "GET", summary=f"{spec.title} report", tags=["reports"],
              permission="report.read", query=ReportQuery,
              responses={403: "role may not read reports", 422: "invalid filters"},
              content_types=["application/json", "text/csv", XLSX])(handler)


for _name in CATALOGUE:
    _make(_name)
