"""What each role may *do*. What each role may *see* is the Scope (scope.py)."""
from __future__ import annotations

ALL_STAFF = {"admin", "executive", "sales_manager", "regional_manager", "account_manager",
             "service_agent", "logistics"}

PERMISSIONS: dict[str, set[str]] = {
    "customer.read": ALL_STAFF | {"customer"},
    "customer.create": {"admin", "sales_manager", "account_manager"},
    "customer.update": {"admin", "sales_manager", "account_manager"},
    "customer.reassign": {"admin", "sales_manager"},
    "customer.relocate_own": {"customer"},
    "customer.delete": {"admin"},
    "customer.export": {"admin", "executive", "sales_manager", "regional_manager", "account_manager",
                        "logistics"},
    "contact.write": {"admin", "sales_manager", "account_manager"},
    "opportunity.read": {"admin", "executive", "sales_manager", "regional_manager", "account_manager"},
    "opportunity.create": {"admin", "sales_manager"},
    "opportunity.assign": {"admin", "sales_manager"},
    "opportunity.update": {"admin", "sales_manager", "account_manager"},
    "opportunity.plan": {"admin", "sales_manager", "account_manager"},
    "opportunity.close": {"admin", "sales_manager", "account_manager"},
    "opportunity.delete": {"admin"},
    "order.read": {"admin", "executive", "sales_manager", "regional_manager", "account_manager",
                   "logistics", "customer"},
    "order.write": {"admin", "sales_manager", "account_manager"},
    "service.read": {"admin", "executive", "sales_manager", "regional_manager", "account_manager",
                     "service_agent", "customer"},
    "service.create": {"admin", "sales_manager", "account_manager", "service_agent", "customer"},
    "service.assign": {"admin", "account_manager"},
    "service.handle": {"admin", "service_agent"},
    "service.rate": {"admin", "account_manager", "customer"},
    "service.delete": {"admin"},
    "churn.read": {"admin", "executive", "sales_manager", "regional_manager", "account_manager"},
    "churn.decide": {"admin", "account_manager"},
    "churn.scan": {"admin"},
    "territory.read": ALL_STAFF,
    "territory.write": {"admin", "sales_manager"},
    "region.write": {"admin"},
    "branch.read": ALL_STAFF | {"customer"},
    "branch.write": {"admin"},
    "partner.read": ALL_STAFF,
    "partner.write": {"admin"},
    "product.read": ALL_STAFF | {"customer"},
    "product.write": {"admin"},
    "user.admin": {"admin"},
    "dictionary.read": ALL_STAFF,
    "dictionary.write": {"admin"},
    "audit.read": {"admin"},
    "report.read": {"admin", "executive", "sales_manager", "regional_manager", "account_manager"},
    "route.read": {"admin", "executive", "logistics"},
    "route.plan": {"admin", "logistics"},
    "map.read": ALL_STAFF,
    "import.run": {"admin"},
}


def can(role: str | None, action: str) -> bool:
    """True when `role` may perform `action`. Unknown actions are denied."""
    return role is not None and role in PERMISSIONS.get(action, set())
