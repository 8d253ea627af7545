"""Schema-driven fuzzing of the JSON API with schemathesis, shared by the CI test
(tests/security/test_schemathesis.py) and the long run (bench/fuzz_api.py).

Cases are generated from the OpenAPI document the app serves (built from the same
registry), sent in-process through the WSGI transport with a bearer token, and every
response is checked: no 5xx, a documented status code, a documented content type, and
a body that matches the documented schema. Failures are collected, not raised, so one
run reports all of them (Hypothesis shrinking is off: the runs are derandomised, so a
failure reproduces by re-running the same seed).
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

# Operations that are correct but too costly to hammer with random input in CI: they
# still get a few examples each (see `budget`).
EXPENSIVE = {
    ("POST", "/api/v1/routes/plan"), ("POST", "/api/v1/routes/{plan_id}/replan"),
    ("GET", "/api/v1/territories/suggest"), ("POST", "/api/v1/territories/suggest/accept"),
    ("POST", "/api/v1/service-areas/voronoi"), ("POST", "/api/v1/churn/scan"),
    ("GET", "/api/v1/stats/hotspots"), ("GET", "/api/v1/stats/underserved"),
    ("POST", "/api/v1/import/{kind}"),
}


def load_schema():
    import geo_crm.api  # noqa: F401  (registers every operation)
    from geo_crm.api.openapi import build_document
    return schemathesis.openapi.from_dict(build_document())


@dataclass
class Failure:
    method: str
    path: str
    check: str
    status: int | None
    message: str
    curl: str = ""

    def __str__(self) -> str:
        return (f"{self.method} {self.path} [{self.check}] status={self.status}: {self.message[:300]}\n"
                f"  {self.curl[:300]}")


@dataclass
class Outcome:
    calls: int = 0
    statuses: Counter = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0


def _failure_items(exc: BaseException):
    subs = getattr(exc, "exceptions", None)
    if subs:
        for e in subs:
            yield from _failure_items(e)
    else:
        yield exc


def _curl(case) -> str:
    try:
        return case.as_curl_command(headers={"Authorization": "Bearer ..."})
    except Exception:
        return ""


def fuzz_operation(app, operation, headers: dict, max_examples: int, *, seed: int = 8,
                   outcome: Outcome | None = None) -> Outcome:
    """Send up to `max_examples` generated cases for one operation; collect failures."""
    out = outcome or Outcome()
    method, path = operation.method.upper(), operation.path
    seen: set[tuple[str, str]] = set()
    t0 = time.perf_counter()

    @settings(max_examples=max_examples, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case):
        try:
            resp = case.call(app=app, headers=headers)
        except Exception as exc:  # an unhandled exception inside the app: a 500 in production
            out.calls += 1
            out.statuses[500] += 1
            msg = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if ("unhandled", msg[:120]) not in seen:
                seen.add(("unhandled", msg[:120]))
                out.failures.append(Failure(method, path, "unhandled_exception", 500, msg, _curl(case)))
            return
        out.calls += 1
        out.statuses[resp.status_code] += 1
        try:
            case.validate_response(resp, checks=CHECKS, headers=headers)
        except BaseExceptionGroup as exc:  # a FailureGroup of check failures
            for f in _failure_items(exc):
                check = type(f).__name__
                msg = (getattr(f, "title", "") + ": " + getattr(f, "message", str(f))).strip(": ")
                key = (check, msg[:120])
                if key in seen:
                    continue
                seen.add(key)
                out.failures.append(Failure(method, path, check, resp.status_code, msg, _curl(case)))

    _ = seed  # derandomize=True seeds from the test's identity; kept for the CLI's report
    run()
    out.seconds += time.perf_counter() - t0
    return out


def operations(schema):
    for result in schema.get_all_operations():
        yield result.ok()
