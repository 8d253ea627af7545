"""Running plans: inline, or in a background thread so that a long solve never blocks
the web server's other requests.

Life cycle stored in `delivery_plan.status`: queued → solving → planned | failed
(`error` holds the message). The page polls `GET /api/v1/routes/<id>`.

Deployment: with gunicorn's `gthread` worker (e.g. `--workers 2 --threads 8`) or any
threaded server, the executor's threads share the worker process with request threads;
PyVRP's C++ search and PostgreSQL do the heavy lifting, so request threads keep being
served. At most `MAX_PARALLEL` solves run at once per process (others wait queued).

Each plan's result is written in one transaction (routes, stops and status together),
so concurrent plans never see or corrupt each other's rows. A plan left `queued`/`solving` by a process
that died stays so until it is re-planned (re-planning is allowed for such stale plans).
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from sqlalchemy import select, update

from geo_crm.models import DeliveryPlan

from .persist import mark_failed, save_result
from .planner import PlanInputError, Prepared, compute

log = logging.getLogger(__name__)
MAX_PARALLEL = 2
_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def executor() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=MAX_PARALLEL, thread_name_prefix="route-plan")
        return _executor


def run_plan(session_factory, plan_id: int, prepared: Prepared, actor: dict | None = None) -> str:
    """Compute and save plan `plan_id` with sessions from `session_factory` (a
    sessionmaker); returns the final status. `actor` ({"user_id", "username"}) tags the
    transactions for the audit triggers, as request sessions are."""
    def session_factory_(_f=session_factory):
        s = _f()
        s.info.update(actor or {})
        return s
    session_factory = session_factory_
    with session_factory() as s:
        s.execute(update(DeliveryPlan).where(DeliveryPlan.id == plan_id, DeliveryPlan.status == "queued")
                  .values(status="solving", version=DeliveryPlan.version + 1))
        s.commit()
    try:
        with session_factory() as s:
            result = compute(s.connection(), prepared)
            plan = s.scalars(select(DeliveryPlan).where(DeliveryPlan.id == plan_id).with_for_update()).one()
            save_result(s, plan, result)
            s.commit()
            return "planned"
    except PlanInputError as e:
        message = f"{e.field}: {e.problem}"
    except Exception as e:  # noqa: BLE001 - reported on the plan, logged with traceback
        log.exception("route plan %s failed", plan_id)
        message = f"internal error ({e.__class__.__name__}); see the server log"
    with session_factory() as s:
        plan = s.get(DeliveryPlan, plan_id)
        if plan is not None:
            mark_failed(s, plan, message)
            s.commit()
    return "failed"


def submit(session_factory, plan_id: int, prepared: Prepared, actor: dict | None = None) -> Future:
    return executor().submit(run_plan, session_factory, plan_id, prepared, actor)


def start_plan(session, scope, req, *, session_factory=None, background: bool = False, plan=None):
    """Validate `req` (PlanInputError → nothing written), then either compute it now in
    `session`'s transaction (the caller commits) or commit a queued plan and hand the
    work to the executor. `plan` re-uses an existing plan row (re-planning)."""
    from .persist import create_plan
    from .planner import prepare
    prepared = prepare(session, scope, req)
    if plan is None:
        plan = create_plan(session, req, user_id=scope.user_id)
    else:
        plan.params = req.to_params()
        plan.name = req.name or plan.name
        plan.status, plan.error = "queued", None
        session.flush()
    if background:
        if session_factory is None:
            raise ValueError("background planning needs a session factory")
        session.commit()
        submit(session_factory, plan.id, prepared, {"user_id": scope.user_id, "username": scope.username})
        return plan
    plan.status = "solving"
    result = compute(session.connection(), prepared)
    save_result(session, plan, result)
    return plan


def replan(session, scope, plan_id: int, overrides: dict, **kw):
    """Re-run a plan with its stored request (fresh orders/customers), optionally with
    another mode, time limit or seed. Refused while it is still being computed."""
    from geo_crm.errors import Forbidden

    from .persist import EditError, get_plan
    from .planner import PlanRequest
    plan = get_plan(session, scope, plan_id, for_update=True)
    if not scope.can("route.plan"):
        raise Forbidden("route.plan")
    if plan.status in ("queued", "solving") and not overrides.pop("force", False):
        raise EditError("status", f"the plan is {plan.status}; wait for it or pass force")
    overrides.pop("force", None)
    params = {**plan.params, **{k: v for k, v in overrides.items() if v is not None}}
    req = PlanRequest.from_params(params)
    return start_plan(session, scope, req, plan=plan, **kw)
