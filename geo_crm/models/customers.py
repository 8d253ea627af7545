"""Customers and their contacts."""
from __future__ import annotations

from datetime import time

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, Numeric, SmallInteger, String, Text, Time
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Timestamps, point, point_checks
from .enums import (CREDIT_RATINGS, CUSTOMER_KINDS, CUSTOMER_LEVELS, CUSTOMER_STATUSES, GENDERS,
                    GEOCODE_QUALITIES, check_in)


class Customer(Timestamps, Base):
    __tablename__ = "customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="company", server_default="company")
    industry: Mapped[str | None] = mapped_column(String(64), index=True)  # dictionary kind 'industry'
    level: Mapped[str] = mapped_column(String(16), default="ordinary", server_default="ordinary")
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    credit_rating: Mapped[str | None] = mapped_column(String(4))
    satisfaction: Mapped[float | None] = mapped_column(Numeric(3, 2))  # rolling mean of ratings 1..5
    employees: Mapped[int | None] = mapped_column(Integer)
    annual_revenue_eur: Mapped[float | None] = mapped_column(Numeric(14, 2))
    address: Mapped[str] = mapped_column(String(300), default="", server_default="")
    postcode: Mapped[str] = mapped_column(String(16), default="", server_default="")
    city: Mapped[str] = mapped_column(String(100), default="", server_default="")
    country: Mapped[str] = mapped_column(String(2), default="FI", server_default="FI")
    phone: Mapped[str] = mapped_column(String(50), default="", server_default="")
    email: Mapped[str] = mapped_column(String(200), default="", server_default="")
    website: Mapped[str] = mapped_column(String(200), default="", server_default="")
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"), index=True)
    geom = point(nullable=True)
    geocode_quality: Mapped[str] = mapped_column(String(16), default="none", server_default="none")
    # delivery fields (logistics)
    delivery_start: Mapped[time | None] = mapped_column(Time)
    delivery_end: Mapped[time | None] = mapped_column(Time)
    service_min: Mapped[int] = mapped_column(SmallInteger, default=10, server_default="10")
    delivery_notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    # stored area membership (kept by SQL triggers/functions; never set by hand)
    region_id: Mapped[int | None] = mapped_column(ForeignKey("region.id", ondelete="SET NULL"), index=True)
    service_branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id", ondelete="SET NULL"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    __mapper_args__ = {"version_id_col": version}

    contacts = relationship("Contact", back_populates="customer", cascade="all, delete-orphan",
                            order_by="Contact.id")

    __table_args__ = (
        CheckConstraint(check_in("kind", CUSTOMER_KINDS), name="kind"),
        CheckConstraint(check_in("level", CUSTOMER_LEVELS), name="level"),
        CheckConstraint(check_in("status", CUSTOMER_STATUSES), name="status"),
        CheckConstraint("credit_rating IS NULL OR " + check_in("credit_rating", CREDIT_RATINGS), name="credit_rating"),
        CheckConstraint(check_in("geocode_quality", GEOCODE_QUALITIES), name="geocode_quality"),
        CheckConstraint("satisfaction IS NULL OR satisfaction BETWEEN 1 AND 5", name="satisfaction_range"),
        CheckConstraint("(geom IS NULL) = (geocode_quality = 'none')", name="geocode_quality_matches_geom"),
        CheckConstraint("length(trim(name)) > 0", name="name_not_blank"),
        CheckConstraint("delivery_end IS NULL OR delivery_start IS NULL OR delivery_end > delivery_start",
                        name="delivery_window_order"),
        *point_checks(),
        Index("ix_customer_name_trgm", "name", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}),
        Index("ix_customer_code_trgm", "code", postgresql_using="gin", postgresql_ops={"code": "gin_trgm_ops"}),
        Index("ix_customer_address_trgm", "address", postgresql_using="gin",
              postgresql_ops={"address": "gin_trgm_ops"}),
        Index("ix_customer_level_status", "level", "status"),
    )


class Contact(Timestamps, Base):
    __tablename__ = "contact"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    gender: Mapped[str] = mapped_column(String(8), default="unknown", server_default="unknown")
    title: Mapped[str] = mapped_column(String(100), default="", server_default="")
    office_phone: Mapped[str] = mapped_column(String(50), default="", server_default="")
    mobile_phone: Mapped[str] = mapped_column(String(50), default="", server_default="")
    email: Mapped[str] = mapped_column(String(200), default="", server_default="")
    is_primary: Mapped[bool] = mapped_column(default=False, server_default="false")
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    __mapper_args__ = {"version_id_col": version}
    customer = relationship("Customer", back_populates="contacts")
    __table_args__ = (CheckConstraint(check_in("gender", GENDERS), name="gender"),
                      CheckConstraint("length(trim(name)) > 0", name="name_not_blank"),
                      Index("ix_contact_name_trgm", "name", postgresql_using="gin",
                            postgresql_ops={"name": "gin_trgm_ops"}))
