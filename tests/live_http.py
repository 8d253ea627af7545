"""A plain HTTP client for tests against the live server (no browser cookies): JSON in,
JSON out, bearer tokens for the demo users."""
from __future__ import annotations

import json
import urllib.request


def call(base: str, method: str, path: str, body=None, token: str | None = None, timeout: float = 30):
    """`method` `base + path` with an optional JSON body and bearer token; the decoded JSON
    answer (None when empty). HTTP errors raise urllib.error.HTTPError."""
    req = urllib.request.Request(
        base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        raw = r.read()
        return json.loads(raw) if raw else None


def token(base: str, username: str) -> str:
    """A bearer token for the demo user `username` (password `<username>-demo`)."""
    return call(base, "POST", "/api/v1/auth/token", {"username": username, "password": f"{username}-demo"})["token"]
