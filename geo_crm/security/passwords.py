"""Password hashing with argon2id (argon2-cffi defaults, RFC 9106 low-memory profile)."""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()
MIN_LENGTH = 10


class PasswordPolicyError(ValueError):
    pass


def check_policy(password: str, username: str = "") -> None:
    """Length over complexity rules (NIST SP 800-63B)."""
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"password must be at least {MIN_LENGTH} characters")
    if len(password) > 256:
        raise PasswordPolicyError("password must be at most 256 characters")
    if username and password.lower() == username.lower():
        raise PasswordPolicyError("password must differ from the username")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


# verified against when the username does not exist, so timing does not reveal it
DUMMY_HASH = _hasher.hash("geo-crm-dummy-password")
