"""HTTP API for administration: users, dictionaries and the audit log."""
from __future__ import annotations

from datetime import date
from typing import Literal

from flask import jsonify
from pydantic import Field

from geo_crm.api.framework import StrictModel, if_match_version, operation, with_etag
from geo_crm.api.records import Paging, _fields, _page_members, domain_errors
from geo_crm.http import current_scope, db
from geo_crm.models.enums import ROLES
from geo_crm.records import audit, dictionaries, users
from geo_crm.records.common import Invalid
from geo_crm.security.permissions import PERMISSIONS

Role = Literal["admin", "executive", "sales_manager", "regional_manager", "account_manager", "service_agent",
               "logistics", "customer"]
assert set(Role.__args__) == set(ROLES)
TAG_U = ["admin"]


class UserQuery(Paging):
    q: str | None = Field(None, max_length=100)
    role: Role | None = None
    active: bool | None = None


class UserIn(StrictModel):
    username: str | None = Field(None, min_length=2, max_length=64)
    role: Role | None = None
    full_name: str | None = Field(None, max_length=200)
    email: str | None = Field(None, max_length=200)
    is_active: bool | None = None
    branch_id: int | None = None
    customer_id: int | None = None
    territory_ids: list[int] | None = None
    password: str | None = Field(None, max_length=256, description="set by the admin; policy-checked")


class PasswordIn(StrictModel):
    password: str = Field(max_length=256)


def _user_resp(u, status: int = 200):
    return with_etag(jsonify(users.user_dict(u)), u.version), status


@operation("/users", summary="List users (admin)", tags=TAG_U, permission="user.admin", query=UserQuery)
@domain_errors
def list_users(query: UserQuery):
    page = users.list_users(db(), current_scope(), q=query.q, role=query.role, active=query.active,
                            limit=query.limit, offset=query.offset)
    return {"items": [users.user_dict(u) for u in page.items], **_page_members(page)}


@operation("/users/<int:user_id>", summary="A user (admin)", tags=TAG_U, permission="user.admin")
@domain_errors
def get_user(user_id: int):
    return _user_resp(users.get_user(db(), current_scope(), user_id))


@operation("/users", "POST", summary="Create a user (admin)", tags=TAG_U, permission="user.admin", body=UserIn,
           responses={201: "created", 422: "invalid"})
@domain_errors
def create_user(body: UserIn):
    s = db()
    u = users.create_user(s, current_scope(), _fields(body))
    s.commit()
    return _user_resp(u, 201)


@operation("/users/<int:user_id>", "PATCH", summary="Update role, activity, territories, branch, customer link "
           "(role or password change ends the user's sessions)", tags=TAG_U, permission="user.admin", body=UserIn,
           responses={412: "stale version", 422: "invalid"})
@domain_errors
def update_user(user_id: int, body: UserIn):
    s = db()
    data = _fields(body)
    u = users.get_user(s, current_scope(), user_id)
    if data.pop("username", u.username) != u.username:
        raise Invalid("username", "usernames cannot be changed")
    u = users.update_user(s, current_scope(), user_id, data, if_match_version())
    s.commit()
    return _user_resp(u)


@operation("/users/<int:user_id>/password", "POST", summary="Set a user's password (admin)", tags=TAG_U,
           permission="user.admin", body=PasswordIn, responses={422: "policy"})
@domain_errors
def set_user_password(user_id: int, body: PasswordIn):
    s = db()
    u = users.reset_password(s, current_scope(), user_id, body.password)
    s.commit()
    return _user_resp(u)


@operation("/users/<int:user_id>", "DELETE", summary="Deactivate a user (admin); tokens are revoked",
           tags=TAG_U, permission="user.admin")
@domain_errors
def deactivate_user(user_id: int):
    s = db()
    u = users.deactivate_user(s, current_scope(), user_id, if_match_version())
    s.commit()
    return _user_resp(u)


@operation("/roles", summary="Roles and their permissions", tags=TAG_U, permission="user.admin")
def list_roles():
    return {"items": [{"role": r, "permissions": sorted(a for a, rs in PERMISSIONS.items() if r in rs)}
                      for r in ROLES]}


# -- dictionaries -----------------------------------------------------------------------------
TAG_D = ["dictionaries"]


class DictQuery(StrictModel):
    kind: str | None = Field(None, max_length=32)
    active: bool | None = None


class DictIn(StrictModel):
    kind: str | None = Field(None, max_length=32)
    code: str | None = Field(None, max_length=64)
    label: str | None = Field(None, min_length=1, max_length=200)
    sort: int | None = None
    active: bool | None = None


@operation("/dictionaries", summary="Dictionary entries (staff)", tags=TAG_D, permission="dictionary.read",
           query=DictQuery)
@domain_errors
def list_dictionaries(query: DictQuery):
    items = dictionaries.list_entries(db(), current_scope(), kind=query.kind, active=query.active)
    return {"items": [dictionaries.entry_dict(d) for d in items], "total": len(items)}


@operation("/dictionaries/<int:entry_id>", summary="A dictionary entry", tags=TAG_D, permission="dictionary.read")
@domain_errors
def get_dictionary(entry_id: int):
    return dictionaries.entry_dict(dictionaries.get_entry(db(), current_scope(), entry_id))


@operation("/dictionaries", "POST", summary="Add a dictionary entry (admin)", tags=TAG_D,
           permission="dictionary.write", body=DictIn, responses={201: "created"})
@domain_errors
def create_dictionary(body: DictIn):
    s = db()
    d = dictionaries.create_entry(s, current_scope(), _fields(body))
    s.commit()
    return jsonify(dictionaries.entry_dict(d)), 201


@operation("/dictionaries/<int:entry_id>", "PATCH", summary="Edit label, sort or active (admin)", tags=TAG_D,
           permission="dictionary.write", body=DictIn)
@domain_errors
def update_dictionary(entry_id: int, body: DictIn):
    s = db()
    d = dictionaries.update_entry(s, current_scope(), entry_id, _fields(body))
    s.commit()
    return dictionaries.entry_dict(d)


@operation("/dictionaries/<int:entry_id>", "DELETE", summary="Deactivate an entry (admin)", tags=TAG_D,
           permission="dictionary.write")
@domain_errors
def delete_dictionary(entry_id: int):
    s = db()
    d = dictionaries.get_entry(s, current_scope(), entry_id)
    dictionaries.delete_entry(s, current_scope(), entry_id)
    s.commit()
    return dictionaries.entry_dict(d)


# -- audit log --------------------------------------------------------------------------------
class AuditQuery(Paging):
    entity: str | None = Field(None, max_length=64)
    entity_id: str | None = Field(None, max_length=64)
    user_id: int | None = None
    username: str | None = Field(None, max_length=64)
    action: str | None = Field(None, max_length=16)
    date_from: date | None = None
    date_to: date | None = Field(None, description="inclusive")


@operation("/audit-log", summary="Audit log (admin): who changed what, old and new values", tags=["audit"],
           permission="audit.read", query=AuditQuery)
@domain_errors
def audit_log(query: AuditQuery):
    page = audit.query(db(), current_scope(), **query.model_dump(exclude={"limit", "offset"}),
                       limit=query.limit, offset=query.offset)
    return {"items": [audit.audit_dict(a) for a in page.items], **_page_members(page)}
