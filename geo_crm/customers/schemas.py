"""Input models for customers and contacts: the one place their write rules live.

Used by the JSON API (request bodies, OpenAPI) and the web forms (which convert
their form data into these models, so both check exactly the same things).

Coordinates are EPSG:4326: `lon` -180..180, `lat` -90..90 (decimal degrees), or a
GeoJSON Point (RFC 7946: `[lon, lat]`, an optional altitude is ignored).
"""
from __future__ import annotations

import math
import re
from datetime import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from geo_crm.models.enums import (CREDIT_RATINGS, CUSTOMER_KINDS, CUSTOMER_LEVELS, CUSTOMER_STATUSES, GENDERS,
                                  GEOCODE_QUALITIES)

Kind = Literal[CUSTOMER_KINDS]  # type: ignore[valid-type]
Level = Literal[CUSTOMER_LEVELS]  # type: ignore[valid-type]
Status = Literal[CUSTOMER_STATUSES]  # type: ignore[valid-type]
CreditRating = Literal[CREDIT_RATINGS]  # type: ignore[valid-type]
Gender = Literal[GENDERS]  # type: ignore[valid-type]
# 'none' is implied by clearing the location; it cannot be set with a location
GeocodeQuality = Literal[tuple(q for q in GEOCODE_QUALITIES if q != "none")]  # type: ignore[valid-type]

EMAIL_RE = re.compile(r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
LOCATION_FIELDS = frozenset({"geometry", "lon", "lat", "geocode_quality"})


def check_email(v: str | None) -> str | None:
    if v is None or v == "":
        return v
    if len(v) > 200 or not EMAIL_RE.match(v):
        raise ValueError("not a valid e-mail address")
    return v


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PointGeometry(Model):
    """A GeoJSON Point (RFC 7946), EPSG:4326 `[lon, lat]`."""
    type: Literal["Point"]
    coordinates: Annotated[list[float], Field(min_length=2, max_length=3)]

    @field_validator("coordinates")
    @classmethod
    def _range(cls, v: list[float]) -> list[float]:
        lon, lat = v[0], v[1]
        if not (math.isfinite(lon) and math.isfinite(lat)):
            raise ValueError("coordinates must be finite numbers")
        if not -180 <= lon <= 180:
            raise ValueError(f"longitude {lon} is outside -180..180")
        if not -90 <= lat <= 90:
            raise ValueError(f"latitude {lat} is outside -90..90")
        return v[:2]


Lon = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False, description="longitude, degrees (EPSG:4326)")]
Lat = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False, description="latitude, degrees (EPSG:4326)")]


class LocationInput(Model):
    """Location fields shared by create/update: a GeoJSON `geometry` or `lon`+`lat`
    (not both); null clears the location."""
    geometry: PointGeometry | None = None
    lon: Lon | None = None
    lat: Lat | None = None
    geocode_quality: GeocodeQuality | None = Field(
        None, description="how the location was found; 'manual' when omitted")

    @model_validator(mode="after")
    def _location(self):
        fs = self.model_fields_set
        if "geometry" in fs and fs & {"lon", "lat"}:
            raise ValueError("give either geometry or lon/lat, not both")
        if ("lon" in fs) != ("lat" in fs) or (self.lon is None) != (self.lat is None):
            raise ValueError("lon and lat go together")
        return self

    def location_given(self) -> bool:
        return bool(self.model_fields_set & {"geometry", "lon", "lat"})

    def location(self) -> tuple[float, float] | None:
        """(lon, lat), or None to clear. Only meaningful when `location_given()`."""
        if self.geometry is not None:
            return self.geometry.coordinates[0], self.geometry.coordinates[1]
        if self.lon is not None and self.lat is not None:
            return self.lon, self.lat
        return None


_Name = Annotated[str, Field(min_length=1, max_length=200)]


class CustomerFields(LocationInput):
    """Writable customer fields; everything optional (PATCH semantics)."""
    code: Annotated[str, Field(min_length=1, max_length=32, pattern=CODE_RE.pattern)] | None = None
    name: _Name | None = None
    kind: Kind | None = None
    industry: Annotated[str, Field(max_length=64)] | None = None
    level: Level | None = None
    status: Status | None = None
    credit_rating: CreditRating | None = None
    employees: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    annual_revenue_eur: Annotated[float, Field(ge=0, lt=1e12, allow_inf_nan=False)] | None = None
    address: Annotated[str, Field(max_length=300)] | None = None
    postcode: Annotated[str, Field(max_length=16)] | None = None
    city: Annotated[str, Field(max_length=100)] | None = None
    country: Annotated[str, Field(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2")] | None = None
    phone: Annotated[str, Field(max_length=50)] | None = None
    email: Annotated[str, Field(max_length=200)] | None = None
    website: Annotated[str, Field(max_length=200)] | None = None
    notes: Annotated[str, Field(max_length=20_000)] | None = None
    owner_id: int | None = None
    delivery_start: time | None = None
    delivery_end: time | None = None
    service_min: Annotated[int, Field(ge=0, le=600, description="minutes on site")] | None = None
    delivery_notes: Annotated[str, Field(max_length=2000)] | None = None
    version: Annotated[int, Field(ge=1, description="the version you edited (optimistic lock)")] | None = None

    _email = field_validator("email")(classmethod(lambda cls, v: check_email(v)))

    @field_validator("name")
    @classmethod
    def _not_blank(cls, v):
        if v is not None and not v.strip():
            raise ValueError("must not be blank")
        return v

    @field_validator("delivery_start", "delivery_end")
    @classmethod
    def _local_time(cls, v):
        if v is not None and v.tzinfo is not None:
            raise ValueError("must be a local time of day without a UTC offset, e.g. 08:30")
        return v

    @field_validator("country")
    @classmethod
    def _upper(cls, v):
        return v.upper() if v else v

    @field_validator("website")
    @classmethod
    def _website(cls, v):
        if v and not re.match(r"^https?://[^\s<>\"]+$", v, re.I):
            raise ValueError("must be an http(s) URL")
        return v

    @model_validator(mode="after")
    def _window(self):
        if self.delivery_start and self.delivery_end and self.delivery_end <= self.delivery_start:
            raise ValueError("delivery_end must be later than delivery_start")
        return self

    def changes(self) -> dict[str, Any]:
        """Fields the caller sent (except location and version)."""
        return {k: getattr(self, k) for k in self.model_fields_set
                if k not in LOCATION_FIELDS and k != "version"}


class CustomerCreate(CustomerFields):
    """A new customer (or a full replacement with PUT): `code` and `name` are required."""
    code: Annotated[str, Field(min_length=1, max_length=32, pattern=CODE_RE.pattern)]
    name: _Name


class ContactFields(Model):
    name: _Name | None = None
    gender: Gender | None = None
    title: Annotated[str, Field(max_length=100)] | None = None
    office_phone: Annotated[str, Field(max_length=50)] | None = None
    mobile_phone: Annotated[str, Field(max_length=50)] | None = None
    email: Annotated[str, Field(max_length=200)] | None = None
    is_primary: bool | None = None
    notes: Annotated[str, Field(max_length=20_000)] | None = None
    version: Annotated[int, Field(ge=1)] | None = None

    _email = field_validator("email")(classmethod(lambda cls, v: check_email(v)))

    @field_validator("name")
    @classmethod
    def _not_blank(cls, v):
        if v is not None and not v.strip():
            raise ValueError("must not be blank")
        return v

    def changes(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.model_fields_set if k != "version"}


class ContactCreate(ContactFields):
    name: _Name
