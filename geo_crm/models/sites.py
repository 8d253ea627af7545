"""The company's own branches (depots) with vehicles, and partners."""
from __future__ import annotations

from datetime import time

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, Numeric, String, Text, Time
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Timestamps, area_checks, multipolygon, point, point_checks
from .enums import PARTNER_TYPES, SERVICE_AREA_KINDS, check_in


class Branch(Timestamps, Base):
    __tablename__ = "branch"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300), default="", server_default="")
    postcode: Mapped[str] = mapped_column(String(16), default="", server_default="")
    city: Mapped[str] = mapped_column(String(100), default="", server_default="")
    phone: Mapped[str] = mapped_column(String(50), default="", server_default="")
    email: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # {"mon": ["08:00", "17:00"], ...}
    opening_hours: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    is_depot: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    geom = point(nullable=False)
    service_area = multipolygon(nullable=True)
    service_area_kind: Mapped[str | None] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (*point_checks(), *area_checks("service_area"),
                      CheckConstraint("service_area_kind IS NULL OR " + check_in("service_area_kind", SERVICE_AREA_KINDS),
                                      name="service_area_kind"))

    vehicles = relationship("Vehicle", back_populates="branch", cascade="all, delete-orphan",
                            order_by="Vehicle.id")


class Vehicle(Base):
    __tablename__ = "vehicle"
    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    capacity: Mapped[int] = mapped_column(Integer)            # load units (e.g. parcels)
    shift_start: Mapped[time] = mapped_column(Time, default=time(7, 0), server_default="7:00")
    shift_end: Mapped[time] = mapped_column(Time, default=time(17, 0), server_default="17:00")
    max_duration_min: Mapped[int] = mapped_column(Integer, default=600, server_default="600")
    speed_kmh: Mapped[int] = mapped_column(Integer, default=50, server_default="50")  # for haversine costing
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    branch = relationship("Branch", back_populates="vehicles")
    __table_args__ = (CheckConstraint("capacity > 0", name="capacity_positive"),
                      CheckConstraint("shift_end > shift_start", name="shift_order"),
                      CheckConstraint("max_duration_min > 0", name="duration_positive"))


class Partner(Timestamps, Base):
    __tablename__ = "partner"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    partner_type: Mapped[str] = mapped_column(String(16))
    credit_level: Mapped[str] = mapped_column(String(8), default="A", server_default="A")
    address: Mapped[str] = mapped_column(String(300), default="", server_default="")
    postcode: Mapped[str] = mapped_column(String(16), default="", server_default="")
    city: Mapped[str] = mapped_column(String(100), default="", server_default="")
    phone: Mapped[str] = mapped_column(String(50), default="", server_default="")
    email: Mapped[str] = mapped_column(String(200), default="", server_default="")
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    geom = point(nullable=False)
    coverage = multipolygon(nullable=True)
    commission_pct: Mapped[float] = mapped_column(Numeric(5, 2), default=0, server_default="0")
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (CheckConstraint(check_in("partner_type", PARTNER_TYPES), name="partner_type"),
                      *point_checks(), *area_checks("coverage"))


class PartnerRegion(Base):
    """Regional coverage of a partner, by administrative region."""
    __tablename__ = "partner_region"
    partner_id: Mapped[int] = mapped_column(ForeignKey("partner.id", ondelete="CASCADE"), primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id", ondelete="CASCADE"), primary_key=True)
