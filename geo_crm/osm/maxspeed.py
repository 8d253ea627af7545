"""Parsing of the OpenStreetMap ``maxspeed`` tag and default speeds.

All speeds are in **kilometres per hour** (km/h).
"""

from __future__ import annotations

import re

#: Miles to kilometres.
MPH_TO_KMH = 1.609344

#: Default speed (km/h) used when a way has no usable ``maxspeed`` tag.
#:
#: These are deliberately conservative *urban* values (the project targets
#: deliveries around Helsinki, where the general limit in built-up areas is
#: 50 km/h and many residential streets are signed 30 or 40 km/h).  They are
#: travel-time assumptions, not legal limits.
DEFAULT_SPEED_KMH: dict[str, float] = {
    "motorway": 100.0,
    "motorway_link": 60.0,
    "trunk": 80.0,
    "trunk_link": 50.0,
    "primary": 60.0,
    "primary_link": 40.0,
    "secondary": 50.0,
    "secondary_link": 40.0,
    "tertiary": 40.0,
    "tertiary_link": 30.0,
    "unclassified": 40.0,
    "residential": 30.0,
    "living_street": 20.0,
    "service": 20.0,
    "road": 30.0,
}

#: Fallback when the highway class itself is unknown.
FALLBACK_SPEED_KMH = 30.0

#: Implicit "zone" values such as ``FI:urban`` (the part after the colon).
#: Values follow the Finnish general limits; other countries' zone tags are
#: mapped to the same numbers, which is a reasonable approximation in Europe.
ZONE_SPEED_KMH: dict[str, float] = {
    "urban": 50.0,
    "rural": 80.0,
    "motorway": 120.0,
    "trunk": 100.0,
    "living_street": 20.0,
    "walk": 7.0,
    "zone30": 30.0,
    "zone20": 20.0,
}

_NUMBER_RE = re.compile(
    r"^\s*(\d+(?:[.,]\d+)?)\s*(km/h|kmh|kph|mph|knots)?\s*$", re.IGNORECASE
)
_ZONE_RE = re.compile(r"^[A-Za-z]{2}:([A-Za-z_]+?)(\d+)?$")


def parse_maxspeed(value: str | None) -> float | None:
    """Parse an OSM ``maxspeed`` value into km/h.

    Understood forms::

        "50"          -> 50.0
        "50 km/h"     -> 50.0
        "30 mph"      -> 48.28
        "FI:urban"    -> 50.0   (country zone tags, see ZONE_SPEED_KMH)
        "DE:zone30"   -> 30.0
        "walk"        -> 7.0
        "50;30"       -> 30.0   (several values: the lowest one)

    Returns ``None`` for missing, empty or unusable values such as
    ``"none"``, ``"signals"`` or ``"variable"``; callers should then use a
    default (see :func:`default_speed_kmh`).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if ";" in text or "|" in text:
        parts = [parse_maxspeed(p) for p in re.split(r"[;|]", text)]
        speeds = [p for p in parts if p is not None]
        return min(speeds) if speeds else None

    m = _NUMBER_RE.match(text)
    if m:
        number = float(m.group(1).replace(",", "."))
        unit = (m.group(2) or "km/h").lower()
        if unit == "mph":
            number *= MPH_TO_KMH
        elif unit == "knots":
            number *= 1.852
        if number <= 0:
            return None
        return round(number, 2)

    lowered = text.lower()
    if lowered in ZONE_SPEED_KMH:
        return ZONE_SPEED_KMH[lowered]
    m = _ZONE_RE.match(text)
    if m:
        zone = m.group(1).lower()
        if m.group(2):  # e.g. DE:zone30, FI:zone40
            if zone == "zone":
                return float(m.group(2))
            return None
        return ZONE_SPEED_KMH.get(zone)
    return None


def default_speed_kmh(highway: str) -> float:
    """Default speed (km/h) for a ``highway`` class, see ``DEFAULT_SPEED_KMH``."""
    return DEFAULT_SPEED_KMH.get(highway, FALLBACK_SPEED_KMH)
