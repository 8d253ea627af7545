"""Request-scoped helpers shared by the JSON API and the HTML views: the database
session, the current user and Scope, permission decorators, and the CSP nonce.

Domain code never imports this module: it takes a session and a Scope as arguments.
"""
from __future__ import annotations

import functools
import secrets

from flask import abort, current_app, g, request, session as cookie
from sqlalchemy import event
from sqlalchemy.orm import Session

from geo_crm.db import Database
from geo_crm.errors import Conflict, Forbidden, NotFound  # noqa: F401  (re-exported for the delivery layers)
from geo_crm.security.scope import Scope


def database() -> Database:
    return current_app.extensions["geo_crm.db"]


def db() -> Session:
    """The request's primary-database session (created on first use)."""
    if "db_session" not in g:
        s = database().Session()
        s.info["user_id"] = getattr(g, "user_id", None)
        s.info["username"] = getattr(g, "username", "")
        s.info["remote_addr"] = request.remote_addr or ""
        g.db_session = s
    return g.db_session


def read_db() -> Session:
    """A session for read-only, replica-tolerant work (tiles, density, reports,
    exports). Falls back to the primary when no replica is configured or reachable."""
    if "read_session" not in g:
        g.read_session = database().read_session()
    return g.read_session


def close_sessions(exc=None) -> None:
    for key in ("db_session", "read_session"):
        s = g.pop(key, None)
        if s is not None:
            try:
                s.rollback()
            finally:
                s.close()


@event.listens_for(Session, "after_begin")
def _tag_transaction(session, transaction, connection) -> None:
    """Tell PostgreSQL who is acting (audit triggers, row-level security)."""
    uid = session.info.get("user_id")
    if uid is None and not session.info.get("username"):
        return
    connection.exec_driver_sql(
        "SELECT set_config('geo_crm.user_id', %(u)s, true), set_config('geo_crm.username', %(n)s, true),"
        " set_config('geo_crm.remote_addr', %(a)s, true)",
        {"u": "" if uid is None else str(uid), "n": session.info.get("username", ""),
         "a": session.info.get("remote_addr", "")})


def current_scope() -> Scope | None:
    return getattr(g, "scope", None)


def current_user():
    return getattr(g, "user", None)


def login_required(view):
    """HTML views: redirect to the login page; API views: 401 (see api.errors)."""
    @functools.wraps(view)
    def wrapper(*a, **kw):
        if current_scope() is None:
            if request.path.startswith("/api/") or request.path.startswith("/ogc"):
                abort(401)
            from flask import redirect, url_for
            return redirect(url_for("auth.login", next=request.full_path if request.query_string else request.path))
        return view(*a, **kw)
    return wrapper


def require(action: str):
    """Allow the view only to roles with permission `action` (others: 404 for reads of
    things they cannot see is handled by the Scope; this is about verbs)."""
    def deco(view):
        @functools.wraps(view)
        @login_required
        def wrapper(*a, **kw):
            if not current_scope().can(action):
                raise Forbidden(action)
            return view(*a, **kw)
        wrapper.required_permission = action
        return wrapper
    return deco


def csp_nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def login_user(user) -> None:
    """Rotate the session on login (a fresh cookie, no pre-login state carried over)."""
    cookie.clear()
    cookie["uid"] = user.id
    cookie["epoch"] = user.auth_epoch
    cookie["sid"] = secrets.token_urlsafe(16)
    cookie.permanent = True
