"""Churn warnings.

`scan()` is set-based SQL, safe to re-run and to run concurrently: the partial unique
index `uq_churn_alert_open_per_customer` allows one open alert (warning/under_recovery)
per customer and the insert uses ON CONFLICT DO NOTHING.

Who is at risk, as of a date D with a threshold of N months (cutoff = D − N months):
an **active** customer with no non-cancelled order dated in [cutoff, D], and either
  * some earlier order (its last order is more than N months old), or
  * no order ever, but the customer record was created before the cutoff
    (a customer who has been active for N months without ordering is just as much at risk;
    a customer created recently without an order yet is not).
Orders dated after D are ignored, so scanning "as of" a past date gives the same answer
it would have given on that day.

An open alert is cleared (status `recovered`, closed_at set) once the customer has a
non-cancelled order dated after the alert's last order (or, when they had none, on or
after the detection day): the scan does this itself, so orders arriving by import clear
warnings too, and `clear_on_order()` does it immediately when an order is written.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from geo_crm.models import ChurnAlert, Customer, Order, Setting
from geo_crm.errors import Forbidden, InvalidInput, InvalidTransition, check_version, get_visible
from geo_crm.security.scope import Scope

DEFAULT_MONTHS = 6
OPEN = ("warning", "under_recovery")


@dataclass
class ScanResult:
    as_of: date
    months: int
    new: int
    already_open: int
    cleared: int

    def as_dict(self) -> dict:
        return {"as_of": self.as_of.isoformat(), "months": self.months, "new": self.new,
                "already_open": self.already_open, "cleared": self.cleared}


def churn_months(conn, default: int | None = None) -> int:
    """N: the `churn_months` row of app_setting if present, else `default`, else 6."""
    row = conn.execute(select(Setting.value).where(Setting.key == "churn_months")).first()
    if row is not None:
        v = row[0]
        v = v.get("value") if isinstance(v, dict) else v
        try:
            return int(v)
        except (TypeError, ValueError):
            pass
    return default or DEFAULT_MONTHS


def _stamp(as_of: date) -> datetime:
    """Event time for a scan as of `as_of`: now for today's scan, else that day's midnight UTC."""
    now = datetime.now(timezone.utc)
    return now if as_of >= now.date() else datetime.combine(as_of, time(0), tzinfo=timezone.utc)


_CLEAR = text("""
UPDATE churn_alert a SET status = 'recovered', closed_at = :stamp, updated_at = now(), version = a.version + 1
WHERE a.status IN ('warning', 'under_recovery')
  AND EXISTS (SELECT 1 FROM sales_order o
              WHERE o.customer_id = a.customer_id AND o.status <> 'cancelled' AND o.order_date <= :as_of
                AND o.order_date > coalesce(a.last_order_at, (a.detected_at AT TIME ZONE 'UTC')::date - 1))
""")

_ELIGIBLE = """
SELECT c.id AS customer_id,
       (SELECT max(o.order_date) FROM sales_order o
         WHERE o.customer_id = c.id AND o.status <> 'cancelled' AND o.order_date <= :as_of) AS last_order_at
FROM customer c
WHERE c.status = 'active'
  AND NOT EXISTS (SELECT 1 FROM sales_order o WHERE o.customer_id = c.id AND o.status <> 'cancelled'
                   AND o.order_date >= :cutoff AND o.order_date <= :as_of)
  AND (c.created_at < CAST(:cutoff AS timestamptz)
       OR EXISTS (SELECT 1 FROM sales_order o WHERE o.customer_id = c.id AND o.status <> 'cancelled'
                   AND o.order_date < :cutoff))
"""

_INSERT = text(f"""
WITH eligible AS ({_ELIGIBLE}), ins AS (
  INSERT INTO churn_alert (customer_id, last_order_at, detected_at, status)
  SELECT customer_id, last_order_at, :stamp, 'warning' FROM eligible
  ON CONFLICT (customer_id) WHERE status IN ('warning', 'under_recovery') DO NOTHING
  RETURNING 1)
SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM eligible)
""")


def scan(conn, *, as_of: date | None = None, months: int | None = None) -> ScanResult:
    """Run the churn scan on a Session or Connection (in the caller's transaction)."""
    as_of = as_of or date.today()
    months = months if months is not None else churn_months(conn)
    if months < 1:
        raise InvalidInput("months", "must be at least 1")
    cutoff = conn.execute(text("SELECT (CAST(:d AS date) - make_interval(months => :m))::date"),
                          {"d": as_of, "m": months}).scalar()
    stamp = _stamp(as_of)
    cleared = conn.execute(_CLEAR, {"as_of": as_of, "stamp": stamp}).rowcount
    new, eligible = conn.execute(_INSERT, {"as_of": as_of, "cutoff": cutoff, "stamp": stamp}).one()
    return ScanResult(as_of=as_of, months=months, new=int(new), already_open=int(eligible) - int(new),
                      cleared=int(cleared))


def clear_on_order(session, customer_id: int) -> int:
    """A new order arrived: close the customer's open alert as `recovered`. Returns the
    number of alerts closed (0 or 1)."""
    r = session.execute(text(
        "UPDATE churn_alert SET status = 'recovered', closed_at = now(), updated_at = now(), version = version + 1 "
        "WHERE customer_id = :c AND status IN ('warning', 'under_recovery')"), {"c": customer_id})
    if isinstance(session, Session):
        for obj in list(session.identity_map.values()):
            if isinstance(obj, ChurnAlert) and obj.customer_id == customer_id:
                session.expire(obj)
    return r.rowcount


# -- reading ---------------------------------------------------------------------------------
@dataclass
class AlertFilter:
    status: str | None = None
    open_only: bool = False
    owner_id: int | None = None


def _filtered(scope: Scope, f: AlertFilter):
    stmt = select(ChurnAlert).where(scope.churn_alert_filter())
    if f.status:
        stmt = stmt.where(ChurnAlert.status == f.status)
    if f.open_only:
        stmt = stmt.where(ChurnAlert.status.in_(OPEN))
    if f.owner_id:
        stmt = stmt.where(ChurnAlert.customer_id.in_(select(Customer.id).where(Customer.owner_id == f.owner_id)))
    return stmt


def get(session: Session, scope: Scope, alert_id: int, *, for_update: bool = False) -> ChurnAlert:
    """The churn alert, or NotFound when it does not exist or the caller may not see it."""
    return get_visible(session, ChurnAlert, alert_id, scope.churn_alert_filter(), for_update=for_update)


def count(session: Session, scope: Scope, f: AlertFilter) -> int:
    return session.scalar(select(func.count()).select_from(_filtered(scope, f).subquery()))


def list_alerts(session: Session, scope: Scope, f: AlertFilter, *, as_of: date | None = None,
                limit: int = 50, after_id: int | None = None) -> list[dict]:
    """Alerts with their customer, last order date, whole months since it, and revenue
    (EUR, non-cancelled orders) in the 12 months up to `as_of` — newest alerts first."""
    as_of = as_of or date.today()
    stmt = _filtered(scope, f)
    if after_id:
        stmt = stmt.where(ChurnAlert.id < after_id)
    alerts = stmt.order_by(ChurnAlert.id.desc()).limit(limit).subquery()
    last = (select(func.max(Order.order_date)).where(Order.customer_id == alerts.c.customer_id,
                                                     Order.status != "cancelled", Order.order_date <= as_of)
            .scalar_subquery())
    revenue = (select(func.coalesce(func.sum(Order.total_amount), 0))
               .where(Order.customer_id == alerts.c.customer_id, Order.status != "cancelled",
                      Order.order_date > _year_before(as_of), Order.order_date <= as_of).scalar_subquery())
    rows = session.execute(
        select(alerts, Customer.code, Customer.name, Customer.owner_id, Customer.status.label("customer_status"),
               last.label("last_order"), revenue.label("revenue_12m"))
        .join(Customer, Customer.id == alerts.c.customer_id)
        .order_by(alerts.c.id.desc())).mappings().all()
    out = []
    for r in rows:
        d = dict(r)
        lo = d["last_order"] or d["last_order_at"]
        d["months_since"] = _months_between(lo, as_of) if lo else None
        d["revenue_12m"] = float(d["revenue_12m"] or 0)
        out.append(d)
    return out


def _year_before(d: date) -> date:
    try:
        return d.replace(year=d.year - 1)
    except ValueError:          # 29 February
        return d.replace(year=d.year - 1, day=28)


def _months_between(earlier: date, later: date) -> int:
    m = (later.year - earlier.year) * 12 + later.month - earlier.month
    return m - 1 if later.day < earlier.day else m


# -- decisions ------------------------------------------------------------------------------
def _decidable(session: Session, scope: Scope, alert_id: int, version: int | None) -> ChurnAlert:
    if not scope.can("churn.decide"):
        raise Forbidden("churn.decide")
    a = get(session, scope, alert_id, for_update=True)
    check_version(a.version, version)
    if scope.role != "admin":
        owner = session.scalar(select(Customer.owner_id).where(Customer.id == a.customer_id))
        if owner != scope.user_id:
            raise Forbidden("churn.decide")
    if a.status not in OPEN:
        raise InvalidTransition(f"the warning is already closed ({a.status.replace('_', ' ')})")
    return a


def recover(session: Session, scope: Scope, alert_id: int, measures: str, *,
            version: int | None = None) -> ChurnAlert:
    """Record recovery measures (status under_recovery); repeated calls add to the log."""
    if not (measures or "").strip():
        raise InvalidInput("measures", "describe the recovery measures")
    a = _decidable(session, scope, alert_id, version)
    stamp = datetime.now(timezone.utc)
    line = f"[{stamp:%Y-%m-%d}] {measures.strip()}"
    a.recovery_measures = f"{a.recovery_measures}\n{line}" if a.recovery_measures else line
    a.status, a.decided_by, a.decided_at = "under_recovery", scope.user_id, stamp
    session.flush()
    return a


def confirm_loss(session: Session, scope: Scope, alert_id: int, reason: str, *,
                 version: int | None = None) -> ChurnAlert:
    """The customer is lost: close the alert and set customer.status = 'lost'."""
    if not (reason or "").strip():
        raise InvalidInput("reason", "say why the customer was lost")
    a = _decidable(session, scope, alert_id, version)
    stamp = datetime.now(timezone.utc)
    a.status, a.reason, a.decided_by, a.decided_at, a.closed_at = "confirmed_lost", reason.strip(), \
        scope.user_id, stamp, stamp
    cust = session.get(Customer, a.customer_id, with_for_update=True)
    cust.status = "lost"
    session.flush()
    return a
