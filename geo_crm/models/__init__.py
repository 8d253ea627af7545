"""SQLAlchemy models. Every geometry is EPSG:4326; see `base.py`."""
from .admin import AddressPoint, AuditLog, Dictionary, GeocodeCache, ImportJob
from .areas import CustomerTerritory, Place, Region, Setting, Territory, TerritoryHistory, TerritoryRegion
from .base import SRID, Base
from .customers import Contact, Customer
from .logistics import DeliveryPlan, DeliveryRoute, RoadSegment, RoadVertex, RouteStop
from .sales import DevelopmentPlanStep, Opportunity, OpportunityStageChange, Order, OrderLine, Product
from .service import ChurnAlert, ServiceRating, ServiceRecord
from .sites import Branch, Partner, PartnerRegion, Vehicle
from .users import ApiToken, Role, User, UserTerritory

__all__ = [n for n in dir() if not n.startswith("_")]
