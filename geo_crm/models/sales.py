"""Products, orders, opportunities and their development plans."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (Boolean, CheckConstraint, Date, DateTime, ForeignKey, Index, Integer, Numeric,
                        SmallInteger, String, Text, func)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Timestamps, point, point_checks
from .enums import OPPORTUNITY_STAGES, OPPORTUNITY_STATUSES, ORDER_STATUSES, check_in


class Product(Timestamps, Base):
    __tablename__ = "product"
    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(64), default="", server_default="")
    unit: Mapped[str] = mapped_column(String(16), default="pcs", server_default="pcs")
    unit_price: Mapped[float] = mapped_column(Numeric(12, 2))
    unit_cost: Mapped[float] = mapped_column(Numeric(12, 2))
    load_units: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")  # vehicle capacity units per item
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (CheckConstraint("unit_price >= 0 AND unit_cost >= 0", name="prices_non_negative"),)


class Order(Timestamps, Base):
    __tablename__ = "sales_order"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))  # ix_sales_order_customer_date
    order_date: Mapped[date] = mapped_column(Date, index=True)
    delivery_date: Mapped[date | None] = mapped_column(Date, index=True)
    status: Mapped[str] = mapped_column(String(16), default="confirmed", server_default="confirmed")
    delivery_address: Mapped[str] = mapped_column(String(300), default="", server_default="")
    delivery_geom = point(nullable=True)
    total_amount: Mapped[float] = mapped_column(Numeric(14, 2), default=0, server_default="0")
    total_cost: Mapped[float] = mapped_column(Numeric(14, 2), default=0, server_default="0")
    total_load: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    __mapper_args__ = {"version_id_col": version}
    lines = relationship("OrderLine", back_populates="order", cascade="all, delete-orphan",
                         order_by="OrderLine.id")
    __table_args__ = (CheckConstraint(check_in("status", ORDER_STATUSES), name="status"),
                      CheckConstraint("total_amount >= 0", name="amount_non_negative"),
                      *point_checks("delivery_geom"),
                      Index("ix_sales_order_customer_date", "customer_id", "order_date"))


class OrderLine(Base):
    __tablename__ = "order_line"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("sales_order.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[float] = mapped_column(Numeric(12, 2))
    unit_cost: Mapped[float] = mapped_column(Numeric(12, 2))
    amount: Mapped[float] = mapped_column(Numeric(14, 2))
    order = relationship("Order", back_populates="lines")
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)


class Opportunity(Timestamps, Base):
    __tablename__ = "opportunity"
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(64))  # dictionary kind 'opportunity_source'
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"), index=True)
    prospect_name: Mapped[str | None] = mapped_column(String(200))
    prospect_geom = point(nullable=True)
    summary: Mapped[str] = mapped_column(Text)
    contact_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    contact_phone: Mapped[str] = mapped_column(String(50), default="", server_default="")
    probability: Mapped[int] = mapped_column(SmallInteger, default=10, server_default="10")  # percent
    amount: Mapped[float] = mapped_column(Numeric(14, 2), default=0, server_default="0")
    stage: Mapped[str] = mapped_column(String(16), default="lead", server_default="lead")
    status: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    expected_close: Mapped[date | None] = mapped_column(Date)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"), index=True)
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lost_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    __mapper_args__ = {"version_id_col": version}
    steps = relationship("DevelopmentPlanStep", back_populates="opportunity", cascade="all, delete-orphan",
                         order_by="DevelopmentPlanStep.planned_on")
    __table_args__ = (
        CheckConstraint(check_in("stage", OPPORTUNITY_STAGES), name="stage"),
        CheckConstraint(check_in("status", OPPORTUNITY_STATUSES), name="status"),
        CheckConstraint("probability BETWEEN 0 AND 100", name="probability_range"),
        CheckConstraint("amount >= 0", name="amount_non_negative"),
        CheckConstraint("customer_id IS NOT NULL OR length(trim(coalesce(prospect_name, ''))) > 0",
                        name="customer_or_prospect"),
        *point_checks("prospect_geom"),
    )


class OpportunityStageChange(Base):
    """Stage history, for time-per-stage and conversion reports."""
    __tablename__ = "opportunity_stage_change"
    id: Mapped[int] = mapped_column(primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunity.id", ondelete="CASCADE"), index=True)
    from_stage: Mapped[str | None] = mapped_column(String(16))
    to_stage: Mapped[str] = mapped_column(String(16))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    changed_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))


class DevelopmentPlanStep(Timestamps, Base):
    __tablename__ = "development_plan_step"
    id: Mapped[int] = mapped_column(primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunity.id", ondelete="CASCADE"), index=True)
    planned_on: Mapped[date] = mapped_column(Date)
    action: Mapped[str] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    __mapper_args__ = {"version_id_col": version}
    opportunity = relationship("Opportunity", back_populates="steps")
    __table_args__ = (CheckConstraint("length(trim(action)) > 0", name="action_not_blank"),)
