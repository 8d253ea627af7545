"""Delivery plans, routes and stops, and the routable road network."""
from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (BigInteger, Boolean, CheckConstraint, Date, DateTime, Float, ForeignKey, Integer,
                        SmallInteger, String, Text, func)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import SRID, Base, point
from .enums import ROUTE_COST_MODES, UNASSIGNED_REASONS, check_in


class DeliveryPlan(Base):
    __tablename__ = "delivery_plan"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    plan_date: Mapped[date] = mapped_column(Date, index=True)
    cost_mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="planned", server_default="planned")  # queued, solving, planned, failed
    params: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    summary: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    __mapper_args__ = {"version_id_col": version}
    routes = relationship("DeliveryRoute", back_populates="plan", cascade="all, delete-orphan",
                          order_by="DeliveryRoute.route_no")
    __table_args__ = (CheckConstraint(check_in("cost_mode", ROUTE_COST_MODES), name="cost_mode"),)


class DeliveryRoute(Base):
    __tablename__ = "delivery_route"
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("delivery_plan.id", ondelete="CASCADE"), index=True)
    route_no: Mapped[int] = mapped_column(SmallInteger)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)
    vehicle_id: Mapped[int | None] = mapped_column(ForeignKey("vehicle.id", ondelete="SET NULL"))
    start_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    distance_m: Mapped[float] = mapped_column(Float, default=0, server_default="0")
    duration_s: Mapped[float] = mapped_column(Float, default=0, server_default="0")
    load: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    color: Mapped[str] = mapped_column(String(16), default="#e6194b", server_default="#e6194b")
    violations: Mapped[list] = mapped_column(JSONB, default=list, server_default="[]")
    geom = mapped_column(Geometry("LINESTRING", srid=SRID, spatial_index=True), nullable=True)
    plan = relationship("DeliveryPlan", back_populates="routes")
    stops = relationship("RouteStop", back_populates="route", cascade="all, delete-orphan",
                         order_by="RouteStop.seq")


class RouteStop(Base):
    """A stop on a route (route_id set) or a stop the plan could not serve (route_id NULL,
    with `unassigned_reason`)."""
    __tablename__ = "route_stop"
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("delivery_plan.id", ondelete="CASCADE"), index=True)
    route_id: Mapped[int | None] = mapped_column(ForeignKey("delivery_route.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int | None] = mapped_column(SmallInteger)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("sales_order.id", ondelete="SET NULL"))
    eta: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    departure: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    demand: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    load_after: Mapped[int | None] = mapped_column(Integer)
    service_min: Mapped[int] = mapped_column(SmallInteger, default=10, server_default="10")
    tw_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    tw_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    required: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    priority: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    unassigned_reason: Mapped[str | None] = mapped_column(String(16))
    violation: Mapped[str | None] = mapped_column(Text)
    geom = point(nullable=False)
    route = relationship("DeliveryRoute", back_populates="stops")
    __table_args__ = (
        CheckConstraint("unassigned_reason IS NULL OR " + check_in("unassigned_reason", UNASSIGNED_REASONS),
                        name="unassigned_reason"),
        CheckConstraint("(route_id IS NULL) = (unassigned_reason IS NOT NULL)", name="assigned_xor_reason"),
    )


class RoadSegment(Base):
    """Directed-or-not road edges for pgRouting. cost/reverse_cost are seconds; a negative
    reverse_cost marks a one-way street (pgRouting convention)."""
    __tablename__ = "road_segment"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    osm_way_id: Mapped[int | None] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    highway: Mapped[str] = mapped_column(String(32), default="", server_default="")
    source: Mapped[int] = mapped_column(BigInteger, index=True)
    target: Mapped[int] = mapped_column(BigInteger, index=True)
    length_m: Mapped[float] = mapped_column(Float)
    maxspeed_kmh: Mapped[float] = mapped_column(Float)
    cost: Mapped[float] = mapped_column(Float)
    reverse_cost: Mapped[float] = mapped_column(Float)
    oneway: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    geom = mapped_column(Geometry("LINESTRING", srid=SRID, spatial_index=True), nullable=False)


class RoadVertex(Base):
    __tablename__ = "road_vertex"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    osm_node_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    geom = point(nullable=False)
