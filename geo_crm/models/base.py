"""Declarative base and shared column helpers. Geometry is always EPSG:4326."""
from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import CheckConstraint, DateTime, MetaData, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SRID = 4326

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def point(nullable: bool = True):
    """A 2D Point column in EPSG:4326 with a GiST index."""
    return mapped_column(Geometry("POINT", srid=SRID, spatial_index=True), nullable=nullable)


def multipolygon(nullable: bool = True):
    return mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True), nullable=nullable)


def point_checks(col: str = "geom") -> list[CheckConstraint]:
    """Valid, in-range lon/lat."""
    return [CheckConstraint(
        f"{col} IS NULL OR (ST_X({col}) BETWEEN -180 AND 180 AND ST_Y({col}) BETWEEN -90 AND 90"
        f" AND NOT ST_IsEmpty({col}))", name=f"{col}_lonlat_range")]


def area_checks(col: str = "geom") -> list[CheckConstraint]:
    return [CheckConstraint(f"{col} IS NULL OR (ST_IsValid({col}) AND NOT ST_IsEmpty({col}))",
                            name=f"{col}_valid")]


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 onupdate=func.now(), nullable=False)
