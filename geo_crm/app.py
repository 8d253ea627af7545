"""The Flask application factory."""
from __future__ import annotations

import importlib
import logging
from pathlib import Path
from urllib.parse import urlparse

from flask import Flask, current_app, g, jsonify, make_response, render_template, request, session as cookie
from flask_babel import Babel
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError

from geo_crm.config import Settings
from geo_crm.db import Database, make_engine
from geo_crm.http import Conflict, Forbidden, NotFound, close_sessions, csp_nonce, db
from geo_crm.security.auth import session_revoked, user_for_token
from geo_crm.security.scope import Scope

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger(__name__)
csrf = CSRFProtect()

# Feature blueprints: (module, attribute). Each feature registers itself here, one line.
BLUEPRINTS = [
    ("geo_crm.web.auth", "bp"),
    ("geo_crm.web.dashboard", "bp"),
    ("geo_crm.api", "bp"),
    ("geo_crm.web.customers", "bp"),     # customers, contacts
    ("geo_crm.web.records", "bp"),       # branches, partners, products, orders
    ("geo_crm.web.admin", "bp"),         # users, roles, dictionaries, audit log
    ("geo_crm.web.sales", "bp"),         # opportunities and plan steps
    ("geo_crm.web.service", "bp"),       # service records
    ("geo_crm.web.churn", "bp"),         # churn alerts
    ("geo_crm.web.maps", "bp"),          # /map, /map/density, /map/territories
    ("geo_crm.web.routes", "bp"),        # delivery planning
    ("geo_crm.web.data", "bp"),          # import and export pages
    ("geo_crm.ogc", "bp"),               # OGC API - Features at /ogc
    ("geo_crm.web.reports", "bp"),       # reports
]


def _import_feature(module: str):
    """Import a feature module; a feature that is not installed is skipped, but an
    error *inside* an existing module is raised."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (module == e.name or module.startswith(e.name + ".")):
            return None
        raise


def create_app(settings: Settings | None = None, database: Database | None = None,
               **overrides) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__, template_folder=str(ROOT / "templates"),
                static_folder=str(Path(__file__).parent / "static"))
    app.config.update(settings.flask_config())
    app.config.update(overrides)
    if database is None:
        database = Database(
            make_engine(settings.database_url, pool_size=settings.db_pool_size,
                        statement_timeout_ms=settings.statement_timeout_ms),
            make_engine(settings.database_replica_url, pool_size=settings.db_pool_size,
                        statement_timeout_ms=settings.statement_timeout_ms)
            if settings.database_replica_url else None)
    app.extensions["geo_crm.db"] = database

    csrf.init_app(app)
    Babel(app, locale_selector=lambda: request.accept_languages.best_match(["en", "fi", "zh"]) or "en")

    for module, attr in BLUEPRINTS:
        mod = _import_feature(module)
        if mod is None:
            continue
        bp = getattr(mod, attr, None)
        if bp is None:
            continue  # a feature package still being written (e.g. an empty directory)
        app.register_blueprint(bp)
        if bp.name == "api":
            csrf.exempt(bp)  # bearer tokens need none; cookie callers are checked in _load_caller

    app.before_request(_load_caller)
    app.before_request(_reject_nul)
    app.after_request(_security_headers)
    app.teardown_appcontext(close_sessions)
    _register_error_handlers(app)
    from geo_crm.web.nav import nav_items, safe_url
    app.jinja_env.globals.update(csp_nonce=csp_nonce, settings=settings, nav_items=nav_items,
                                 safe_url=safe_url)
    app.jinja_env.policies["json.dumps_kwargs"] = {"sort_keys": True}
    return app


def _load_caller() -> None:
    """Identify the caller from a bearer token or the session cookie, and build the Scope."""
    from geo_crm.models import User

    g.scope = g.user = None
    g.user_id, g.username = None, ""
    auth = request.headers.get("Authorization", "")
    user = None
    if auth.lower().startswith("bearer "):
        user = user_for_token(db(), auth[7:].strip())
        g.auth_method = "token"
        if user is None:
            return  # the API answers 401 for protected endpoints
    elif "uid" in cookie:
        user = db().get(User, cookie["uid"])
        g.auth_method = "cookie"
        if user is None or not user.is_active or cookie.get("epoch") != user.auth_epoch \
                or not cookie.get("sid") or session_revoked(db(), cookie["sid"]):
            cookie.clear()
            return
    if user is None:
        return
    g.user, g.user_id, g.username = user, user.id, user.username
    g.scope = Scope.for_user(user)
    # the session was opened before we knew the user: tag it for audit and RLS
    s = db()
    s.info.update(user_id=user.id, username=user.username)
    s.rollback()
    # API calls that carry the session cookie must carry a CSRF token as well
    if g.auth_method == "cookie" and request.path.startswith(("/api/", "/ogc")) \
            and request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()


def _nul_field(value, path: str = "body") -> str | None:
    """The first field of a decoded JSON value holding a NUL character, or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for k, v in value.items():
            hit = ("\x00" in k and f"{path}.{k}") or _nul_field(v, f"{path}.{k}")
            if hit:
                return hit
    elif isinstance(value, list):
        for i, v in enumerate(value):
            hit = _nul_field(v, f"{path}.{i}")
            if hit:
                return hit
    return None


def _reject_nul():
    """NUL characters cannot be stored in PostgreSQL text: refuse them at the edge
    (422 on the API, 400 on forms) instead of failing deep inside a query."""
    field = next((k for k, v in request.args.items(multi=True) if "\x00" in k or "\x00" in v), None)
    if field is None and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        field = next((k for k, v in request.form.items(multi=True) if "\x00" in k or "\x00" in v), None)
    if field is None and request.is_json:
        field = _nul_field(request.get_json(silent=True))
    if field is None:
        return None
    problem = "must not contain NUL characters"
    if _wants_json():
        return _error(422, "validation", f"{field}: {problem}", fields=[{"field": field, "problem": problem}])
    return _error(400, "validation", f"{field}: {problem}")


def _tile_origin(url: str | None) -> str:
    """CSP source for the configured base-map tiles ('' when none)."""
    if not url:
        return ""
    u = urlparse(url)
    if not u.scheme or not u.netloc:
        return ""
    host = u.netloc.replace("{s}", "*")
    return f" {u.scheme}:" if "{" in host else f" {u.scheme}://{host}"


def _security_headers(resp):
    tile_src = _tile_origin(current_app.config["GEO_CRM"].tile_url)
    nonce = g.get("csp_nonce")
    script_src = "'self'" + (f" 'nonce-{nonce}'" if nonce else "")
    resp.headers.setdefault(
        "Content-Security-Policy",
        f"default-src 'self'; script-src {script_src}; style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' data: blob:{tile_src}; connect-src 'self'; font-src 'self' data:; "
        "worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'")
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("Referrer-Policy", "same-origin")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("Permissions-Policy", "geolocation=(self), camera=(), microphone=()")
    if g.get("user") is not None and "Cache-Control" not in resp.headers:
        resp.headers["Cache-Control"] = "private, no-store"
    return resp


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/ogc")) or request.accept_mimetypes.best == "application/json"


def _error(status: int, code: str, message: str, **extra):
    if _wants_json():
        body = {"error": {"code": code, "message": message, **extra}}
        return jsonify(body), status
    return render_template("error.html", status=status, message=message), status


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(NotFound)
    @app.errorhandler(404)
    def not_found(e):
        return _error(404, "not_found", "not found")

    @app.errorhandler(Forbidden)
    @app.errorhandler(403)
    def forbidden(e):
        return _error(403, "forbidden", "you may not do this")

    @app.errorhandler(401)
    def unauthorized(e):
        resp = _error(401, "unauthorized", "authentication required")
        if _wants_json():
            resp[0].headers["WWW-Authenticate"] = 'Bearer realm="geo-crm"'
        return resp

    @app.errorhandler(Conflict)
    def conflict(e):
        status = 412 if request.headers.get("If-Match") else 409
        return _error(status, "conflict", str(e) or "the record was changed by someone else; reload and retry")

    @app.errorhandler(CSRFError)
    def csrf_error(e):
        return _error(400, "csrf", "missing or invalid CSRF token; reload the page and try again")

    @app.errorhandler(413)
    def too_large(e):
        return _error(413, "too_large", "request body too large")

    @app.errorhandler(405)
    def method_not_allowed(e):
        return _error(405, "method_not_allowed", "method not allowed")

    @app.errorhandler(OperationalError)
    def db_down(e):
        orig = getattr(e, "orig", None)
        code = getattr(orig, "pgcode", None)
        # query_canceled: the statement timeout. Under a parallel plan the leader may report
        # a worker's "canceling statement due to user request" (the worker was cancelled
        # because the leader timed out), so the SQLSTATE decides, not the message.
        if code == "57014":
            log.warning("statement timeout on %s", request.path)
            return _error(422, "query_too_expensive",
                          "the query took too long; narrow the area or the filters")
        if code == "55P03":                                         # lock_not_available (lock_timeout)
            log.warning("lock timeout on %s", request.path)
            resp = make_response(_error(503, "busy", "the record is being changed by someone else; try again shortly"))
            resp.headers["Retry-After"] = "1"
            return resp
        log.warning("database unavailable: %s: %s", e.__class__.__name__,
                    (str(orig) or repr(orig)).splitlines()[0] if orig is not None else e)
        resp = make_response(_error(503, "database_unavailable", "the database is unavailable; try again shortly"))
        resp.headers["Retry-After"] = "5"
        return resp

    @app.errorhandler(DataError)
    def bad_value(e):
        # SQLSTATE class 22 (a value out of range or malformed for its column): bad
        # input that slipped past validation. Logged, answered as a client error.
        log.warning("data error: %s", str(getattr(e, "orig", e)).splitlines()[0])
        return _error(422, "invalid_value", "a value is out of range or malformed")

    @app.errorhandler(IntegrityError)
    def integrity(e):
        # a constraint the domain code did not check first (e.g. a row still referenced)
        log.warning("integrity error: %s", str(getattr(e, "orig", e)).splitlines()[0])
        return _error(409, "conflict", "the change conflicts with related records")

    @app.errorhandler(DBAPIError)
    def db_error(e):
        log.exception("database error")
        return _error(500, "internal", "internal error")

    @app.errorhandler(500)
    def internal(e):
        return _error(500, "internal", "internal error")
