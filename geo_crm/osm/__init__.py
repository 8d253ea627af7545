"""OpenStreetMap input for geo-crm (no database needed).

Public API::

    from geo_crm.osm import read_road_segments, read_address_points, OSMReadError

Coordinates are WGS 84 lon/lat (EPSG:4326), lengths metres, speeds km/h,
costs seconds.  See :mod:`geo_crm.osm.reader` for details.
"""

from .maxspeed import DEFAULT_SPEED_KMH, default_speed_kmh, parse_maxspeed
from .reader import (
    DRIVABLE_HIGHWAYS,
    EXCLUDED_SERVICE,
    AddressPoint,
    OSMReadError,
    RoadSegment,
    is_drivable,
    oneway_direction,
    read_address_points,
    read_road_segments,
)

__all__ = [
    "AddressPoint",
    "DEFAULT_SPEED_KMH",
    "DRIVABLE_HIGHWAYS",
    "EXCLUDED_SERVICE",
    "OSMReadError",
    "RoadSegment",
    "default_speed_kmh",
    "is_drivable",
    "oneway_direction",
    "parse_maxspeed",
    "read_address_points",
    "read_road_segments",
]
