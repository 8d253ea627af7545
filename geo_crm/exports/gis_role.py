"""Read-only PostgreSQL login roles for GIS tools (QGIS), limited by row-level
security to what one CRM user's Scope allows (policies in migration 0008).

The role gets CONNECT, USAGE on schema public, and SELECT on the map layers only:
customer (only the columns `Scope.customer_fields` allows for the user's role),
contact, customer_territory, branch, partner, region, territory, place and
address_point. Nothing else (users, tokens, audit log, orders...) is granted.
"""
from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.engine import Connection

from geo_crm.security.scope import BASIC_CUSTOMER_FIELDS, DELIVERY_CUSTOMER_FIELDS

NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{2,62}$")
LAYERS = ["contact", "customer_territory", "branch", "partner", "region", "territory", "place", "address_point"]
CUSTOMER_COLUMNS_BY_ROLE = {"service_agent": BASIC_CUSTOMER_FIELDS, "logistics": DELIVERY_CUSTOMER_FIELDS}


class RoleError(ValueError):
    pass


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def create_readonly_role(conn: Connection, name: str, password: str, username: str) -> dict:
    """Create (or update the password and grants of) login role `name` seeing what CRM
    user `username` sees. Runs in the caller's transaction."""
    if not NAME_RE.match(name):
        raise RoleError("role name: 3-63 characters, lower-case letters, digits and '_', not starting with a digit")
    if len(password) < 12:
        raise RoleError("password: at least 12 characters")
    user = conn.execute(text("SELECT id, role FROM app_user WHERE username = :u AND is_active"),
                        {"u": username}).first()
    if user is None:
        raise RoleError(f"no active CRM user {username!r}")
    exists = conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = :n"), {"n": name}).first()
    if exists and exists[0]:
        raise RoleError(f"{name} is a superuser role: refusing")
    q = _quote(name)
    pw = conn.execute(text("SELECT quote_literal(:p)"), {"p": password}).scalar()
    if exists:
        conn.execute(text(f"ALTER ROLE {q} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT PASSWORD {pw}"))
    else:
        conn.execute(text(f"CREATE ROLE {q} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT PASSWORD {pw}"))
    conn.execute(text(f"GRANT crm_gis_reader TO {q}"))
    conn.execute(text(f"ALTER ROLE {q} SET default_transaction_read_only = on"))
    db = conn.execute(text("SELECT current_database()")).scalar()
    conn.execute(text(f"GRANT CONNECT ON DATABASE {_quote(db)} TO {q}"))
    conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {q}"))
    conn.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {q}"))
    cols = CUSTOMER_COLUMNS_BY_ROLE.get(user.role)
    if cols is None:
        conn.execute(text(f"GRANT SELECT ON customer TO {q}"))
    else:
        real = [c for c in sorted(cols) if c not in ("lon", "lat")]
        conn.execute(text(f"GRANT SELECT ({', '.join(real)}) ON customer TO {q}"))
    layers = [t for t in LAYERS if not (t == "partner" and user.role == "customer")]
    conn.execute(text(f"GRANT SELECT ON {', '.join(layers)} TO {q}"))
    conn.execute(text("INSERT INTO gis_role (rolname, user_id) VALUES (:n, :u)"
                      " ON CONFLICT (rolname) DO UPDATE SET user_id = EXCLUDED.user_id"),
                 {"n": name, "u": user.id})
    return {"role": name, "user": username, "crm_role": user.role, "tables": ["customer", *layers]}


def drop_readonly_role(conn: Connection, name: str) -> None:
    if not conn.execute(text("SELECT 1 FROM gis_role WHERE rolname = :n"), {"n": name}).first():
        raise RoleError(f"{name} is not a GIS read-only role of this database")
    q = _quote(name)
    conn.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {q}"))
    conn.execute(text(f"REVOKE USAGE ON SCHEMA public FROM {q}"))
    db = conn.execute(text("SELECT current_database()")).scalar()
    conn.execute(text(f"REVOKE CONNECT ON DATABASE {_quote(db)} FROM {q}"))
    conn.execute(text("DELETE FROM gis_role WHERE rolname = :n"), {"n": name})
    conn.execute(text(f"DROP ROLE {q}"))
