"""Authentication rules shared by the web login, the token endpoint and the CLI.

- argon2id password hashes, rehashed on login when parameters change;
- account lockout after `MAX_FAILURES` consecutive failures for `LOCKOUT`;
- a per-address sliding-window rate limit on login attempts;
- API tokens: 256-bit random, only their SHA-256 stored, with expiry and revocation;
- `auth_epoch` on the user invalidates every session and token issued before a
  password or role change.
"""
from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import defaultdict, deque
from datetime import datetime, timedelta, timezone

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from geo_crm.models import ApiToken, User
from geo_crm.models.enums import ROLES
from geo_crm.security.passwords import (DUMMY_HASH, check_policy, hash_password, needs_rehash,
                                        verify_password)

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)


class AuthError(Exception):
    """Login failed. The message is safe to show: it never says which part was wrong."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class LoginRateLimiter:
    """At most `limit` attempts per key (client address) in `window_s` seconds.
    In-process: with several server processes the effective limit is per process,
    which the account lockout backs up."""

    def __init__(self, limit: int = 20, window_s: float = 60.0):
        self.limit, self.window_s = limit, window_s
        self._hits: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def hit(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            q = self._hits[key]
            while q and q[0] < now - self.window_s:
                q.popleft()
            if len(q) >= self.limit:
                return False
            q.append(now)
            return True


def authenticate(session: Session, username: str, password: str) -> User:
    """Check credentials and update lockout counters. Raises AuthError."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_active:
        verify_password(DUMMY_HASH, password)
        raise AuthError("invalid username or password")
    now = utcnow()
    if user.locked_until and user.locked_until > now:
        # same message and (hashing) cost as an unknown user: a lockout must not
        # reveal that the username exists
        verify_password(DUMMY_HASH, password)
        raise AuthError("invalid username or password")
    if not verify_password(user.password_hash, password):
        failures = user.failed_logins + 1
        values = {"failed_logins": failures}
        if failures >= MAX_FAILURES:
            values = {"failed_logins": 0, "locked_until": now + LOCKOUT}
        # a direct UPDATE: not blocked by the optimistic-lock version, committed by the caller
        session.execute(update(User).where(User.id == user.id).values(**values)
                        .execution_options(synchronize_session=False))
        raise AuthError("invalid username or password")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def set_password(user: User, new_password: str) -> None:
    check_policy(new_password, user.username)
    user.password_hash = hash_password(new_password)
    user.password_changed_at = utcnow()
    user.auth_epoch = (user.auth_epoch or 0) + 1


def create_user(session: Session, *, username: str, role: str, password: str, full_name: str = "",
                email: str | None = None, branch_id: int | None = None,
                customer_id: int | None = None) -> User:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of: {', '.join(ROLES)}")
    if session.scalar(select(User.id).where(User.username == username)):
        raise ValueError(f"user {username!r} already exists")
    check_policy(password, username)
    user = User(username=username, role=role, password_hash=hash_password(password),
                full_name=full_name, email=email, branch_id=branch_id, customer_id=customer_id,
                password_changed_at=utcnow())
    session.add(user)
    session.flush()
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: User, ttl: timedelta) -> tuple[str, datetime]:
    token = secrets.token_urlsafe(32)
    expires = utcnow() + ttl
    session.add(ApiToken(user_id=user.id, token_sha256=_digest(token), expires_at=expires,
                         auth_epoch=user.auth_epoch))
    session.flush()
    return token, expires


def user_for_token(session: Session, token: str) -> User | None:
    row = session.execute(
        select(ApiToken, User).join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_sha256 == _digest(token))).first()
    if row is None:
        return None
    tok, user = row
    if tok.revoked_at or tok.expires_at <= utcnow() or not user.is_active or tok.auth_epoch != user.auth_epoch:
        return None
    return user


def revoke_session(session: Session, sid: str, until: datetime) -> None:
    """Refuse the cookie session `sid` from now until `until` (when the cookie would
    expire anyway); forget revocations that have expired."""
    session.execute(text("DELETE FROM revoked_session WHERE expires_at < now()"))
    session.execute(text("INSERT INTO revoked_session (sid, expires_at) VALUES (:sid, :until) "
                         "ON CONFLICT (sid) DO NOTHING"), {"sid": sid[:64], "until": until})


def session_revoked(session: Session, sid: str) -> bool:
    return session.execute(text("SELECT 1 FROM revoked_session WHERE sid = :sid"), {"sid": sid[:64]}).first() is not None


def revoke_token(session: Session, token: str) -> bool:
    res = session.execute(update(ApiToken).where(ApiToken.token_sha256 == _digest(token),
                                                 ApiToken.revoked_at.is_(None))
                          .values(revoked_at=utcnow()))
    return res.rowcount > 0
