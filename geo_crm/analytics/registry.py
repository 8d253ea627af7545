"""The report catalogue and the query model shared by the API and the web pages."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from geo_crm.analytics.churn import churn
from geo_crm.analytics.common import ReportParams, default_period
from geo_crm.analytics.composition import composition
from geo_crm.analytics.contribution import contribution
from geo_crm.analytics.pipeline import pipeline
from geo_crm.analytics.revenue import views_as_of
from geo_crm.analytics.segments import segments
from geo_crm.analytics.service import service
from geo_crm.customers.filters import Level, _csv_list

MAX_PERIOD_DAYS = 3660


@dataclass(frozen=True)
class ReportSpec:
    name: str
    title: str
    description: str
    fn: Callable
    permissions: tuple[str, ...]
    uses_period: bool = True


CATALOGUE: dict[str, ReportSpec] = {s.name: s for s in (
    ReportSpec("contribution", "Contribution", "Revenue and margin per customer, ABC classes, Lorenz curve and "
               "Gini, top customers, contribution per region, territory, branch and account manager.",
               contribution, ("report.read", "order.read")),
    ReportSpec("composition", "Composition", "Customers by level, status, industry, region, territory and credit "
               "rating, with cross-tabs.", composition, ("report.read", "customer.read"), uses_period=False),
    ReportSpec("service", "Service", "Requests by type and status, times to assign and resolve, satisfaction, "
               "reopen rate, agent load, complaints per 1,000 customers.", service,
               ("report.read", "service.read")),
    ReportSpec("churn", "Churn", "Warnings, recoveries and losses over time, churn rates, revenue at risk, "
               "customers who stopped ordering.", churn, ("report.read", "churn.read")),
    ReportSpec("segments", "Value segments", "Current and potential value split at the medians into grow, "
               "maintain, develop and drop; RFM scores.", segments, ("report.read", "order.read")),
    ReportSpec("pipeline", "Sales pipeline", "Open opportunities by stage and probability, weighted pipeline, "
               "conversion and time per stage.", pipeline, ("report.read", "opportunity.read")),
)}


class ReportQuery(BaseModel):
    """Filters of every report. The period is inclusive; its end is the "as of" date."""
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    date_from: Annotated[date | None, Field(description="period start (default: 364 days before date_to)")] = None
    date_to: Annotated[date | None, Field(description="period end and as-of date (default: the report views' "
                                                      "as-of date, else today)")] = None
    region_id: int | None = None
    territory_id: int | None = None
    level: list[Level] | None = None
    owner_id: Annotated[int | None, Field(description="account manager (user id)")] = None
    format: Literal["json", "csv", "xlsx"] = "json"
    table: Annotated[str | None, Field(max_length=64, description="CSV: which table (default: the first)")] = None
    top: Annotated[int, Field(ge=1, le=500, description="contribution/segments: list length")] = 20
    inactive_months: Annotated[int, Field(ge=1, le=60, description="churn: months without orders")] = 6

    _split = field_validator("level", mode="before")(_csv_list)

    @model_validator(mode="after")
    def _check(self):
        if self.date_from and self.date_to:
            if self.date_from > self.date_to:
                raise ValueError("date_from is after date_to")
            if (self.date_to - self.date_from).days > MAX_PERIOD_DAYS:
                raise ValueError(f"the period may span at most {MAX_PERIOD_DAYS} days")
        return self


def build_params(session, q: ReportQuery, *, today: date | None = None) -> ReportParams:
    """Fill the period defaults: the trailing 12 months to the views' as-of date."""
    to = q.date_to or views_as_of(session) or today or date.today()
    frm = q.date_from or default_period(to)[0]
    if frm > to:
        frm = default_period(to)[0]
    return ReportParams(date_from=frm, date_to=to, region_id=q.region_id, territory_id=q.territory_id,
                        level=tuple(q.level or ()), owner_id=q.owner_id)


def run(session, scope, name: str, q: ReportQuery, params: ReportParams | None = None) -> dict:
    spec = CATALOGUE[name]
    p = params or build_params(session, q)
    if name in ("contribution", "segments"):
        return spec.fn(session, scope, p, top=q.top)
    if name == "churn":
        return spec.fn(session, scope, p, inactive_months=q.inactive_months)
    return spec.fn(session, scope, p)


def allowed(scope, name: str) -> bool:
    return all(scope.can(perm) for perm in CATALOGUE[name].permissions)
