"""The main navigation: (label, endpoint, permission). Features add one line each."""
from __future__ import annotations

from flask import url_for
from flask_babel import lazy_gettext as _l
from werkzeug.routing import BuildError

from geo_crm.http import current_scope

NAV = [
    (_l("Dashboard"), "dashboard.index", None),
    (_l("Customers"), "customers.list_view", "customer.read"),
    (_l("Map"), "maps.customer_map", "map.read"),
    (_l("Territories"), "maps.territories", "territory.write"),
    (_l("Opportunities"), "sales.opportunities", "opportunity.read"),
    (_l("Service"), "service.records", "service.read"),
    (_l("Churn"), "churn.alerts", "churn.read"),
    (_l("Orders"), "records.orders", "order.read"),
    (_l("Routes"), "routes.plans", "route.read"),
    (_l("Reports"), "reports.index", "report.read"),
    (_l("Import"), "data.import_view", "import.run"),
    (_l("Export"), "data.export_view", "customer.export"),
    (_l("Admin"), "admin.index", "user.admin"),
]


def safe_url(endpoint: str, **values) -> str | None:
    """url_for, or None when the feature providing `endpoint` is not installed."""
    try:
        return url_for(endpoint, **values)
    except BuildError:
        return None


def nav_items() -> list[dict]:
    scope = current_scope()
    items = []
    for label, endpoint, perm in NAV:
        if perm and (scope is None or not scope.can(perm)):
            continue
        try:
            items.append({"label": str(label), "url": url_for(endpoint)})
        except BuildError:
            continue  # feature not installed
    return items
