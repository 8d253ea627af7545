"""HTTP API v1 (`/api/v1`). Each feature module registers its operations on `bp`
by being imported here: one line per feature."""
from geo_crm.api.framework import bp  # noqa: F401
from geo_crm.api import auth, openapi  # noqa: F401,E402
