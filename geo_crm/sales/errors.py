"""Workflow errors shared by the sales, service desk and churn domains.

Delivery layers map them: `InvalidTransition` → 409, `InvalidInput` → 422 with the
field named. Visibility (404), stale versions (412/409) and missing verbs (403) use
`geo_crm.http.NotFound`, `Conflict` and `Forbidden`.
"""
from __future__ import annotations


class InvalidTransition(Exception):
    """The record's state does not allow this step (e.g. rating an unresolved request)."""


class InvalidInput(ValueError):
    """A value is invalid; `field` names it."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


def check_version(current: int, expected: int | None) -> None:
    """Optimistic locking: `expected` is the version the caller last read (None: skip)."""
    from geo_crm.http import Conflict
    if expected is not None and expected != current:
        raise Conflict(f"version mismatch: you have {expected}, the record is at {current}; reload and retry")
