"""Token authentication for API clients."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app, request
from pydantic import Field

from geo_crm.api.framework import ApiError, StrictModel, operation
from geo_crm.http import current_user, db
from geo_crm.security.auth import AuthError, authenticate, issue_token, revoke_token

_limiter = None


def limiter():
    global _limiter
    if _limiter is None:
        from geo_crm.security.auth import LoginRateLimiter
        _limiter = LoginRateLimiter()
    return _limiter


class TokenRequest(StrictModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenResponse(StrictModel):
    token: str
    token_type: str = "Bearer"
    expires_at: str
    role: str


@operation("/auth/token", "POST", summary="Exchange username and password for a bearer token",
           tags=["auth"], body=TokenRequest, response=TokenResponse, auth=False,
           responses={401: "invalid credentials", 429: "too many attempts"})
def token(body: TokenRequest):
    if not limiter().hit(request.remote_addr or "?"):
        raise ApiError(429, "rate_limited", "too many login attempts; wait a minute")
    s = db()
    try:
        user = authenticate(s, body.username, body.password)
    except AuthError as e:
        s.commit()  # keep the failure counter
        raise ApiError(401, "invalid_credentials", str(e))
    ttl = timedelta(hours=current_app.config["GEO_CRM"].token_ttl_hours)
    tok, expires = issue_token(s, user, ttl)
    s.commit()
    return {"token": tok, "token_type": "Bearer", "expires_at": expires.isoformat(), "role": user.role}


@operation("/auth/revoke", "POST", summary="Revoke the bearer token used for this request",
           tags=["auth"])
def revoke():
    auth = request.headers.get("Authorization", "")
    if not auth.lower().startswith("bearer "):
        raise ApiError(400, "no_token", "send the token to revoke as Authorization: Bearer <token>")
    revoke_token(db(), auth[7:].strip())
    db().commit()
    return {"revoked": True}


@operation("/auth/me", summary="Who am I, and what may I do", tags=["auth"])
def me():
    u = current_user()
    from geo_crm.security.permissions import PERMISSIONS
    return {"id": u.id, "username": u.username, "role": u.role, "full_name": u.full_name,
            "territory_ids": [t.id for t in u.territories], "branch_id": u.branch_id,
            "customer_id": u.customer_id,
            "permissions": sorted(a for a, roles in PERMISSIONS.items() if u.role in roles)}
