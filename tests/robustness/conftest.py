"""Shared helpers for the robustness suite (concurrency, timeouts, crash safety)."""
from __future__ import annotations

import pytest
import requests


class Http:
    """A `requests` session against the live server with one user's bearer token."""

    def __init__(self, base: str, token: str):
        self.base = base
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {token}"

    def __getattr__(self, verb):
        def call(path, **kw):
            kw.setdefault("timeout", 60)
            return getattr(self.s, verb)(self.base + path, **kw)
        return call


@pytest.fixture()
def http(live_server, demo_tokens):
    """http('admin').get('/api/v1/...') — a fresh requests session per call (one per thread)."""
    made: list[Http] = []

    def make(username: str) -> Http:
        h = Http(live_server, demo_tokens[username])
        made.append(h)
        return h
    yield make
    for h in made:
        h.s.close()
