"""User administration (admin only). Password hashes never leave this module.

Changing a user's role or password bumps `auth_epoch`, which invalidates every
session cookie and API token issued before (see geo_crm.security.auth)."""
from __future__ import annotations

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from geo_crm.models import ApiToken, Branch, Customer, Territory, User
from geo_crm.models.enums import ROLES
from geo_crm.records.common import Forbidden, Invalid, NotFound, Page, check_version, paginate, plain
from geo_crm.security.auth import create_user as _create_user, set_password, utcnow
from geo_crm.security.passwords import PasswordPolicyError, check_policy
from geo_crm.security.scope import Scope

ADMIN = "user.admin"
TERRITORY_ROLES = ("sales_manager", "regional_manager")


def _need(scope: Scope) -> None:
    if not scope.can(ADMIN):
        raise Forbidden(ADMIN)


def user_dict(u: User) -> dict:
    return {"id": u.id, "username": u.username, "role": u.role, "full_name": u.full_name, "email": u.email,
            "is_active": u.is_active, "branch_id": u.branch_id, "customer_id": u.customer_id,
            "territory_ids": sorted(t.id for t in u.territories), "last_login_at": plain(u.last_login_at),
            "password_changed_at": plain(u.password_changed_at), "locked_until": plain(u.locked_until),
            "auth_epoch": u.auth_epoch, "version": u.version, "created_at": plain(u.created_at)}


def list_users(session: Session, scope: Scope, *, q: str | None = None, role: str | None = None,
               active: bool | None = None, limit: int = 100, offset: int = 0) -> Page:
    _need(scope)
    stmt = select(User).order_by(User.username)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(User.username.ilike(like), User.full_name.ilike(like), User.email.ilike(like)))
    if role:
        stmt = stmt.where(User.role == role)
    if active is not None:
        stmt = stmt.where(User.is_active.is_(active))
    return paginate(session, stmt, limit, offset)


def get_user(session: Session, scope: Scope, user_id: int) -> User:
    _need(scope)
    u = session.get(User, user_id)
    if u is None:
        raise NotFound()
    return u


def _check_links(session: Session, role: str, branch_id, customer_id, territory_ids) -> None:
    if role not in ROLES:
        raise Invalid("role", f"one of {', '.join(ROLES)}")
    if branch_id is not None and session.get(Branch, branch_id) is None:
        raise Invalid("branch_id", "no such branch")
    if role == "logistics" and branch_id is None:
        raise Invalid("branch_id", "a logistics user works for a branch")
    if customer_id is not None and session.get(Customer, customer_id) is None:
        raise Invalid("customer_id", "no such customer")
    if role == "customer" and customer_id is None:
        raise Invalid("customer_id", "a customer login belongs to one customer")
    if role != "customer" and customer_id is not None:
        raise Invalid("customer_id", "only customer logins are linked to a customer")
    if territory_ids:
        known = set(session.scalars(select(Territory.id).where(Territory.id.in_(territory_ids))))
        missing = sorted(set(territory_ids) - known)
        if missing:
            raise Invalid("territory_ids", f"unknown territory ids: {missing}")


def _set_territories(session: Session, u: User, ids: list[int]) -> None:
    u.territories = list(session.scalars(select(Territory).where(Territory.id.in_(sorted(set(ids)) or [-1]))))


def create_user(session: Session, scope: Scope, data: dict) -> User:
    _need(scope)
    username = (data.get("username") or "").strip()
    if not (2 <= len(username) <= 64):
        raise Invalid("username", "2 to 64 characters")
    role = data.get("role") or ""
    _check_links(session, role, data.get("branch_id"), data.get("customer_id"), data.get("territory_ids"))
    if session.scalar(select(User.id).where(User.username == username)):
        raise Invalid("username", "already taken")
    password = data.get("password") or ""
    try:
        check_policy(password, username)
    except PasswordPolicyError as e:
        raise Invalid("password", str(e))
    u = _create_user(session, username=username, role=role, password=password,
                     full_name=data.get("full_name") or "", email=data.get("email"),
                     branch_id=data.get("branch_id"), customer_id=data.get("customer_id"))
    if data.get("territory_ids"):
        _set_territories(session, u, data["territory_ids"])
    if data.get("is_active") is False:
        u.is_active = False
    session.flush()
    return u


def update_user(session: Session, scope: Scope, user_id: int, data: dict, expected_version: int | None) -> User:
    u = get_user(session, scope, user_id)
    check_version(u.version, expected_version)
    role = data.get("role", u.role)
    branch_id = data.get("branch_id", u.branch_id)
    customer_id = data.get("customer_id", u.customer_id)
    territory_ids = data.get("territory_ids")
    _check_links(session, role, branch_id, customer_id, territory_ids)
    if u.id == scope.user_id and (role != u.role or data.get("is_active") is False):
        raise Invalid("role" if role != u.role else "is_active",
                      "you cannot demote or deactivate yourself; ask another admin")
    if role != u.role:
        u.role = role
        u.auth_epoch = (u.auth_epoch or 0) + 1   # sessions and tokens of the old role end
    u.branch_id, u.customer_id = branch_id, customer_id
    for k in ("full_name", "email"):
        if k in data:
            setattr(u, k, data[k] if k == "email" else (data[k] or ""))
    if "is_active" in data and data["is_active"] is not None:
        if not data["is_active"] and u.is_active:
            _revoke_tokens(session, u)
        u.is_active = data["is_active"]
        if u.is_active:
            u.failed_logins, u.locked_until = 0, None
    if territory_ids is not None:
        _set_territories(session, u, territory_ids)
    if data.get("password"):
        reset_password(session, scope, u.id, data["password"])
    session.flush()
    return u


def reset_password(session: Session, scope: Scope, user_id: int, password: str) -> User:
    """Admin sets a new password (policy-checked); old sessions and tokens end."""
    u = get_user(session, scope, user_id)
    try:
        set_password(u, password)
    except PasswordPolicyError as e:
        raise Invalid("password", str(e))
    u.failed_logins, u.locked_until = 0, None
    session.flush()
    return u


def _revoke_tokens(session: Session, u: User) -> None:
    session.execute(update(ApiToken).where(ApiToken.user_id == u.id, ApiToken.revoked_at.is_(None))
                    .values(revoked_at=utcnow()))


def deactivate_user(session: Session, scope: Scope, user_id: int, expected_version: int | None = None) -> User:
    u = get_user(session, scope, user_id)
    check_version(u.version, expected_version)
    if u.id == scope.user_id:
        raise Invalid("is_active", "you cannot deactivate yourself")
    u.is_active = False
    _revoke_tokens(session, u)
    session.flush()
    return u
