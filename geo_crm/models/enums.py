"""Closed code lists. Stored as text with CHECK constraints (easier to evolve than
PostgreSQL enum types, and Citus-friendly). Open lists (industries, service types,
opportunity sources) live in the editable `dictionary` table instead."""

ROLES = ("admin", "executive", "sales_manager", "regional_manager", "account_manager",
         "service_agent", "logistics", "customer")
CUSTOMER_KINDS = ("company", "person")
CUSTOMER_LEVELS = ("key", "major", "ordinary", "small")
CUSTOMER_STATUSES = ("prospect", "active", "dormant", "lost")
CREDIT_RATINGS = ("AAA", "AA", "A", "BBB", "BB", "B", "C")
GEOCODE_QUALITIES = ("exact", "address", "street", "postcode", "city", "manual", "none")
GENDERS = ("female", "male", "other", "unknown")
PARTNER_TYPES = ("distributor", "reseller", "supplier")
ORDER_STATUSES = ("draft", "confirmed", "delivered", "cancelled")
OPPORTUNITY_STAGES = ("lead", "qualified", "proposal", "negotiation", "won", "lost")
OPPORTUNITY_STATUSES = ("open", "won", "lost")
SERVICE_STATUSES = ("new", "assigned", "in_progress", "resolved", "archived")
CHURN_STATUSES = ("warning", "under_recovery", "confirmed_lost", "recovered")
TERRITORY_SOURCES = ("drawn", "regions", "suggested")
SERVICE_AREA_KINDS = ("drawn", "voronoi")
ROUTE_COST_MODES = ("network", "haversine")
UNASSIGNED_REASONS = ("capacity", "time_window", "out_of_reach", "not_selected", "no_location")


def check_in(column: str, values: tuple[str, ...]) -> str:
    """SQL CHECK expression restricting `column` to `values`."""
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{column} IN ({quoted})"
