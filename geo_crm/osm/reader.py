"""DB-free OpenStreetMap reader built on pyosmium.

Reads ``.osm.pbf`` (and ``.osm`` XML, ``.osm.bz2`` ...; the format is taken
from the file name's extension, as osmium does) and returns plain Python
dataclasses:

* :func:`read_road_segments` -- the drivable road network, split into edges
  at intersections, with lengths and travel costs ready for pgRouting.
* :func:`read_address_points` -- address points from nodes and from closed
  ways / multipolygons (their centroid).

Units and reference system
--------------------------
* Coordinates are WGS 84 longitude/latitude in degrees (**EPSG:4326**),
  always in ``(lon, lat)`` order.
* Lengths are geodesic metres on the WGS 84 ellipsoid (``pyproj.Geod``).
* Speeds are km/h, costs are seconds of travel time.

The whole selected network is held in memory, which is fine for city or
regional extracts (the bundled central-Helsinki extract takes well under a
second); it is not meant for country-sized files.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

import osmium
import osmium.geom
import shapely
from pyproj import Geod

from .maxspeed import default_speed_kmh, parse_maxspeed

__all__ = [
    "AddressPoint",
    "DRIVABLE_HIGHWAYS",
    "EXCLUDED_SERVICE",
    "OSMReadError",
    "RoadSegment",
    "read_address_points",
    "read_road_segments",
]

_GEOD = Geod(ellps="WGS84")

#: ``highway=*`` values that make up the drivable network.
DRIVABLE_HIGHWAYS: frozenset[str] = frozenset(
    {
        "motorway", "motorway_link",
        "trunk", "trunk_link",
        "primary", "primary_link",
        "secondary", "secondary_link",
        "tertiary", "tertiary_link",
        "unclassified", "residential", "living_street",
        "service", "road",
    }
)

#: ``service=*`` values of ``highway=service`` that are left out: parking-lot
#: aisles, private driveways and the like add many tiny dead ends and are not
#: useful for routing between customer addresses.  Plain ``service`` roads and
#: ``service=alley`` are kept.
EXCLUDED_SERVICE: frozenset[str] = frozenset(
    {"parking_aisle", "driveway", "drive-through", "emergency_access"}
)

#: Access values that make a way unusable for a delivery vehicle.
_NO_ACCESS = frozenset({"no", "private"})
_ONEWAY_YES = frozenset({"yes", "true", "1"})
_ONEWAY_NO = frozenset({"no", "false", "0"})
#: Highway classes that are oneway unless tagged ``oneway=no``.
_IMPLIED_ONEWAY = frozenset({"motorway", "motorway_link"})


class OSMReadError(Exception):
    """An OSM file could not be read (missing, unreadable or malformed)."""


@dataclass(frozen=True)
class RoadSegment:
    """One routable edge: a piece of an OSM way between two graph nodes.

    ``source_node``/``target_node`` are OSM node ids of the end points;
    ``coords`` is the polyline as ``(lon, lat)`` tuples in EPSG:4326, from
    source to target.  ``length_m`` is geodesic metres.  ``maxspeed_kmh`` is
    the parsed ``maxspeed`` tag or, when absent/unparseable, the default for
    the highway class (``maxspeed_from_tag`` tells which).  ``cost_s`` is
    the travel time in seconds from source to target and ``reverse_cost_s``
    from target to source, ``-1`` when that direction is not allowed
    (pgRouting convention).  Oneway streets are always emitted in their
    allowed direction (``oneway=-1`` ways are reversed), so for them
    ``cost_s > 0`` and ``reverse_cost_s == -1``.
    """

    osm_way_id: int
    segment_index: int
    name: str | None
    highway: str
    source_node: int
    target_node: int
    length_m: float
    maxspeed_kmh: float
    maxspeed_from_tag: bool
    cost_s: float
    reverse_cost_s: float
    oneway: bool
    coords: list[tuple[float, float]] = field(repr=False)

    @property
    def wkt(self) -> str:
        """The geometry as WKT ``LINESTRING(lon lat, ...)`` (EPSG:4326)."""
        return "LINESTRING(" + ", ".join(f"{x:.7f} {y:.7f}" for x, y in self.coords) + ")"


@dataclass(frozen=True)
class AddressPoint:
    """An address from an OSM node, or the centroid of a way/multipolygon.

    ``osm_type`` is ``"node"``, ``"way"`` or ``"relation"``; ``lon``/``lat``
    are EPSG:4326 degrees.  ``postcode`` and ``city`` are ``None`` when the
    object has no ``addr:postcode`` / ``addr:city`` tag.
    """

    osm_type: str
    osm_id: int
    street: str
    housenumber: str
    postcode: str | None
    city: str | None
    lon: float
    lat: float


# --------------------------------------------------------------------------
# helpers


def _check_path(pbf_path: str | os.PathLike) -> str:
    path = os.fspath(pbf_path)
    if not os.path.exists(path):
        raise OSMReadError(f"OSM file not found: {path}")
    if not os.path.isfile(path):
        raise OSMReadError(f"not a regular file: {path}")
    if os.path.getsize(path) == 0:
        raise OSMReadError(f"OSM file is empty: {path}")
    return path


def _iterate(processor: osmium.FileProcessor, path: str) -> Iterable:
    """Iterate a FileProcessor, turning osmium failures into OSMReadError."""
    try:
        yield from processor
    except OSMReadError:
        raise
    except (RuntimeError, ValueError, OSError) as exc:
        raise OSMReadError(f"cannot read OSM file {path}: {exc}") from exc


def _processor(path: str) -> osmium.FileProcessor:
    try:
        return osmium.FileProcessor(path)
    except (RuntimeError, ValueError, OSError) as exc:
        raise OSMReadError(f"cannot open OSM file {path}: {exc}") from exc


def is_drivable(tags) -> bool:
    """True if a way's tags (mapping-like) describe a drivable road.

    Kept: ``highway`` in :data:`DRIVABLE_HIGHWAYS`, minus ``area=yes``,
    ``service`` in :data:`EXCLUDED_SERVICE` and ways whose most specific
    access tag (``motorcar`` > ``motor_vehicle`` > ``vehicle`` > ``access``)
    is ``no`` or ``private``.
    """
    highway = tags.get("highway")
    if highway not in DRIVABLE_HIGHWAYS:
        return False
    if tags.get("area") == "yes":
        return False
    if highway == "service" and tags.get("service") in EXCLUDED_SERVICE:
        return False
    for key in ("motorcar", "motor_vehicle", "vehicle", "access"):
        value = tags.get(key)
        if value is not None:
            return value not in _NO_ACCESS
    return True


def oneway_direction(tags) -> int:
    """Direction of travel allowed along the way's node order.

    Returns ``0`` for two-way, ``1`` for oneway along the digitised
    direction and ``-1`` for oneway against it.  ``oneway=yes/true/1`` ->
    1, ``oneway=-1``/``reverse`` -> -1, ``junction=roundabout``/``circular``
    and ``highway=motorway``/``motorway_link`` imply 1 unless
    ``oneway=no``.  ``oneway=reversible``/``alternating`` (time-dependent)
    is treated as two-way.
    """
    value = (tags.get("oneway") or "").strip().lower()
    if value in _ONEWAY_YES:
        return 1
    if value in ("-1", "reverse"):
        return -1
    if value in _ONEWAY_NO:
        return 0
    if tags.get("junction") in ("roundabout", "circular"):
        return 1
    if tags.get("highway") in _IMPLIED_ONEWAY:
        return 1
    return 0


# --------------------------------------------------------------------------
# roads


def read_road_segments(pbf_path: str | os.PathLike) -> list[RoadSegment]:
    """Read the drivable road network of an OSM file as routable edges.

    Ways are selected with :func:`is_drivable` and split into edges at every
    node that is shared with another selected way (or visited twice by the
    same way), so the result forms a graph whose vertices are OSM node ids.
    Nodes missing from the extract (ways clipped at the extract border)
    also end an edge; the part of the way beyond them is dropped.

    Costs: ``cost_s = length_m / (maxspeed_kmh / 3.6)``; see
    :class:`RoadSegment` for the oneway conventions.

    The list is sorted by ``(osm_way_id, segment_index)``.

    Raises :class:`OSMReadError` if the file is missing or malformed.
    """
    path = _check_path(pbf_path)
    processor = _processor(path).with_locations().with_filter(
        osmium.filter.EntityFilter(osmium.osm.WAY)
    )

    # (way id, tags dict, [(node id, lon, lat) or (node id, None, None)])
    ways: list[tuple[int, dict[str, str], list[tuple[int, float | None, float | None]]]] = []
    for obj in _iterate(processor, path):
        if not obj.is_way():
            continue
        tags = {t.k: t.v for t in obj.tags}
        if not is_drivable(tags):
            continue
        nodes = []
        for ref in obj.nodes:
            loc = ref.location
            if loc.valid():
                nodes.append((ref.ref, loc.lon, loc.lat))
            else:
                nodes.append((ref.ref, None, None))
        if len(nodes) >= 2:
            ways.append((obj.id, tags, nodes))

    usage: Counter[int] = Counter()
    for _, _, nodes in ways:
        usage.update(n[0] for n in nodes)

    segments: list[RoadSegment] = []
    for way_id, tags, nodes in sorted(ways, key=lambda w: w[0]):
        direction = oneway_direction(tags)
        highway = tags["highway"]
        parsed = parse_maxspeed(tags.get("maxspeed"))
        speed = parsed if parsed is not None else default_speed_kmh(highway)
        index = 0
        for piece in _split_way(nodes, usage):
            if direction == -1:
                piece = piece[::-1]
            lons = [p[1] for p in piece]
            lats = [p[2] for p in piece]
            length = float(_GEOD.line_length(lons, lats))
            cost = length / (speed / 3.6)
            segments.append(
                RoadSegment(
                    osm_way_id=way_id,
                    segment_index=index,
                    name=tags.get("name"),
                    highway=highway,
                    source_node=piece[0][0],
                    target_node=piece[-1][0],
                    length_m=length,
                    maxspeed_kmh=speed,
                    maxspeed_from_tag=parsed is not None,
                    cost_s=cost,
                    reverse_cost_s=-1.0 if direction else cost,
                    oneway=bool(direction),
                    coords=list(zip(lons, lats)),
                )
            )
            index += 1
    return segments


def _split_way(nodes, usage: Counter) -> list[list[tuple[int, float, float]]]:
    """Split a way's node list at shared nodes and at missing locations."""
    pieces: list[list[tuple[int, float, float]]] = []
    current: list[tuple[int, float, float]] = []
    last = len(nodes) - 1
    for i, node in enumerate(nodes):
        if node[1] is None:  # location missing from the extract
            if len(current) >= 2:
                pieces.append(current)
            current = []
            continue
        current.append(node)
        if 0 < i < last and usage[node[0]] > 1 and len(current) >= 2:
            pieces.append(current)
            current = [node]
    if len(current) >= 2:
        pieces.append(current)
    return pieces


# --------------------------------------------------------------------------
# addresses


def read_address_points(pbf_path: str | os.PathLike) -> list[AddressPoint]:
    """Read address points (``addr:housenumber`` + ``addr:street``).

    Sources:

    * nodes carrying both tags, at the node position;
    * closed ways and multipolygon relations carrying both tags (buildings,
      but also e.g. schools or parks with an address), at the centroid of
      the assembled area.  Areas that osmium cannot assemble (typically
      relations cut by the extract border) are skipped; a closed way that
      fails assembly falls back to the mean of its node positions.
      Non-closed ways are ignored.

    Points are sorted by ``(osm_type, osm_id)`` with ``node < way <
    relation``.  Raises :class:`OSMReadError` on a missing/malformed file.
    """
    path = _check_path(pbf_path)
    addr_filter = osmium.filter.KeyFilter("addr:housenumber")
    processor = _processor(path).with_areas(addr_filter)
    wkb = osmium.geom.WKBFactory()

    points: dict[tuple[str, int], AddressPoint] = {}
    closed_way_fallback: dict[int, tuple[dict[str, str], float, float]] = {}

    for obj in _iterate(processor, path):
        tags = obj.tags
        if "addr:housenumber" not in tags or "addr:street" not in tags:
            continue
        if obj.is_node():
            if not obj.location.valid():
                continue
            _add(points, "node", obj.id, tags, obj.location.lon, obj.location.lat)
        elif obj.is_way():
            if not obj.is_closed():
                continue
            locs = [n.location for n in obj.nodes if n.location.valid()]
            if len(locs) < 3:
                continue
            # drop the repeated closing node before averaging
            ring = locs[:-1] if (locs[0].lon, locs[0].lat) == (locs[-1].lon, locs[-1].lat) else locs
            closed_way_fallback[obj.id] = (
                {t.k: t.v for t in tags},
                sum(loc.lon for loc in ring) / len(ring),
                sum(loc.lat for loc in ring) / len(ring),
            )
        elif obj.is_area():
            osm_type = "way" if obj.from_way() else "relation"
            try:
                geom = shapely.from_wkb(wkb.create_multipolygon(obj))
            except (RuntimeError, shapely.errors.GEOSException):
                continue
            if geom.is_empty:
                continue
            centroid = geom.centroid
            _add(points, osm_type, obj.orig_id(), tags, centroid.x, centroid.y)

    for way_id, (tags, lon, lat) in closed_way_fallback.items():
        if ("way", way_id) not in points:
            _add(points, "way", way_id, tags, lon, lat)

    order = {"node": 0, "way": 1, "relation": 2}
    return sorted(points.values(), key=lambda p: (order[p.osm_type], p.osm_id))


def _add(points: dict, osm_type: str, osm_id: int, tags, lon: float, lat: float) -> None:
    points[(osm_type, osm_id)] = AddressPoint(
        osm_type=osm_type,
        osm_id=osm_id,
        street=tags.get("addr:street"),
        housenumber=tags.get("addr:housenumber"),
        postcode=tags.get("addr:postcode"),
        city=tags.get("addr:city"),
        lon=float(lon),
        lat=float(lat),
    )
