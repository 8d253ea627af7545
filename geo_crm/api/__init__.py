"""HTTP API v1 (`/api/v1`). Each feature module registers its operations on `bp`
by being imported here (listed in FEATURES; a feature not installed is skipped)."""
from geo_crm.api.framework import bp  # noqa: F401
from geo_crm.api import auth, openapi  # noqa: F401,E402

FEATURES = ["customers", "records", "admin", "sales", "service", "spatial", "territories", "tiles",
            "routes", "data", "reports", "churn"]


def _load() -> None:
    from geo_crm.app import _import_feature
    for name in FEATURES:
        _import_feature(f"geo_crm.api.{name}")


_load()
