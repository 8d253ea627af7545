"""Administrative regions, sales territories, populated places, and stored area membership.

Membership of a customer in a region / territory / branch service area is data, kept
current by SQL functions and triggers (see migrations), so "customers in X" and the
visibility checks are B-tree lookups instead of point-in-polygon at query time.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (BigInteger, CheckConstraint, DateTime, Float, ForeignKey, Integer, String,
                        Text, func)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Timestamps, area_checks, multipolygon, point, point_checks
from .enums import TERRITORY_SOURCES, check_in


class Region(Base):
    __tablename__ = "region"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_local: Mapped[str | None] = mapped_column(String(200))
    level: Mapped[int] = mapped_column(Integer, default=1, server_default="1")  # 0 country, 1 region, 2 municipality
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("region.id"))
    population: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    area_km2: Mapped[float | None] = mapped_column(Float)  # geodesic, from geography
    geom = multipolygon(nullable=False)
    __table_args__ = tuple(area_checks())


class Territory(Timestamps, Base):
    __tablename__ = "territory"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    color: Mapped[str] = mapped_column(String(16), default="#3388ff", server_default="#3388ff")
    source: Mapped[str] = mapped_column(String(16), default="drawn", server_default="drawn")
    geom = multipolygon(nullable=False)
    area_km2: Mapped[float | None] = mapped_column(Float)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (CheckConstraint(check_in("source", TERRITORY_SOURCES), name="source"),
                      CheckConstraint("color ~ '^#[0-9a-fA-F]{6}$'", name="color_hex"),
                      *area_checks())

    users = relationship("User", secondary="user_territory", back_populates="territories", lazy="selectin")


class TerritoryRegion(Base):
    """Regions a territory was built from (source='regions')."""
    __tablename__ = "territory_region"
    territory_id: Mapped[int] = mapped_column(ForeignKey("territory.id", ondelete="CASCADE"), primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id", ondelete="CASCADE"), primary_key=True)


class TerritoryHistory(Base):
    """Every version of a territory's shape, with who changed it."""
    __tablename__ = "territory_history"
    id: Mapped[int] = mapped_column(primary_key=True)
    territory_id: Mapped[int] = mapped_column(Integer, index=True)  # no FK: survives deletion
    name: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(16))  # create, update, delete, split, merge
    geom = multipolygon(nullable=True)
    changed_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    note: Mapped[str] = mapped_column(Text, default="", server_default="")


class CustomerTerritory(Base):
    """Stored membership: which territories contain a customer's location."""
    __tablename__ = "customer_territory"
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True)
    territory_id: Mapped[int] = mapped_column(ForeignKey("territory.id", ondelete="CASCADE"),
                                              primary_key=True, index=True)


class Place(Base):
    """GeoNames populated places (CC BY 4.0); population feeds market penetration."""
    __tablename__ = "place"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # geonameid
    name: Mapped[str] = mapped_column(String(200))
    ascii_name: Mapped[str] = mapped_column(String(200))
    population: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    region_id: Mapped[int | None] = mapped_column(ForeignKey("region.id"), index=True)
    geom = point(nullable=False)
    __table_args__ = tuple(point_checks())


class Setting(Base):
    __tablename__ = "app_setting"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict] = mapped_column(JSONB)
