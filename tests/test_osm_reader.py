"""Tests for geo_crm.osm (pyosmium reader); no database needed."""

from __future__ import annotations

import csv
import gzip
import math
from collections import Counter
from pathlib import Path

import pytest

from geo_crm.osm import (
    DEFAULT_SPEED_KMH,
    OSMReadError,
    parse_maxspeed,
    read_address_points,
    read_road_segments,
)

REPO = Path(__file__).resolve().parents[1]
HELSINKI_PBF = REPO / "sample_data" / "helsinki.osm.pbf"
needs_helsinki = pytest.mark.skipif(
    not HELSINKI_PBF.exists(),
    reason="sample_data/helsinki.osm.pbf absent"
)

# --------------------------------------------------------------------------
# A tiny hand-written network around node 1 (central Helsinki coordinates):
#
#                 20
#                 |   way 101: oneway=yes, maxspeed "30 mph" (south -> north)
#   10 --12-- 1 ------ 40 (roundabout 40-41-42-43-40, way 103)
#        |        |        \
#   footway 105   21        42 -- 44  way 104 (exit)
#                 |
#                 30 -- 31   way 102: 21-30-31, oneway=-1, maxspeed FI:urban
#
# way 100: 10-12-1-40 two-way residential, maxspeed 40
# way 101: 21-1-20   oneway=yes  (crosses way 100 at node 1)
# excluded: footway 105 (50-12-51), private service 106 (1-52),
#           parking aisle 107 (40-53), residential area=yes 108 (54-55-56-54)
# --------------------------------------------------------------------------

NODES = {
    1: (24.9400, 60.1700),
    10: (24.9380, 60.1700),
    12: (24.9390, 60.1700),
    40: (24.9420, 60.1700),
    41: (24.9425, 60.1703),
    42: (24.9430, 60.1700),
    43: (24.9425, 60.1697),
    44: (24.9440, 60.1700),
    20: (24.9400, 60.1710),
    21: (24.9400, 60.1690),
    30: (24.9400, 60.1680),
    31: (24.9410, 60.1680),
    50: (24.9390, 60.1705),
    51: (24.9390, 60.1695),
    52: (24.9400, 60.1720),
    53: (24.9420, 60.1720),
    54: (24.9450, 60.1720),
    55: (24.9455, 60.1720),
    56: (24.9455, 60.1725),
    # address node + building corners
    60: (24.9370, 60.1710),
    61: (24.9371, 60.1711),
    70: (24.9360, 60.1690),
    71: (24.9362, 60.1690),
    72: (24.9362, 60.1691),
    73: (24.9360, 60.1691),
    80: (24.9350, 60.1680),
    81: (24.9351, 60.1681),
}

NODE_TAGS = {
    60: {"addr:housenumber": "5", "addr:street": "Testikatu", "addr:postcode": "00100",
         "addr:city": "Helsinki"},
    61: {"addr:housenumber": "7"},  # no street -> not an address point
}

WAYS = [
    (100, [10, 12, 1, 40], {"highway": "residential", "name": "Mainstreet", "maxspeed": "40"}),
    (101, [21, 1, 20], {"highway": "residential", "name": "Oneway St", "oneway": "yes",
                         "maxspeed": "30 mph"}),
    (102, [21, 30, 31], {"highway": "residential", "name": "Backwards", "oneway": "-1",
                          "maxspeed": "FI:urban"}),
    (103, [40, 41, 42, 43, 40], {"highway": "tertiary", "junction": "roundabout"}),
    (104, [42, 44], {"highway": "tertiary", "name": "Exit"}),
    (105, [50, 12, 51], {"highway": "footway"}),
    (106, [1, 52], {"highway": "service", "access": "private"}),
    (107, [40, 53], {"highway": "service", "service": "parking_aisle"}),
    (108, [54, 55, 56, 54], {"highway": "residential", "area": "yes"}),
    (200, [70, 71, 72, 73, 70], {"building": "yes", "addr:housenumber": "3A",
                                 "addr:street": "Rakennuskatu"}),
    (201, [80, 81], {"barrier": "fence", "addr:housenumber": "9",
                     "addr:street": "Aitakatu"}),  # not closed -> ignored
]


def _xml_tags(tags: dict[str, str]) -> str:
    return "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())


def write_osm_xml(path: Path) -> Path:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">']
    for nid, (lon, lat) in sorted(NODES.items()):
        tags = NODE_TAGS.get(nid)
        attrs = f'id="{nid}" version="1" lat="{lat}" lon="{lon}"'
        if tags:
            lines.append(f"<node {attrs}>{_xml_tags(tags)}</node>")
        else:
            lines.append(f"<node {attrs}/>")
    for wid, refs, tags in WAYS:
        nds = "".join(f'<nd ref="{r}"/>' for r in refs)
        lines.append(f'<way id="{wid}" version="1">{nds}{_xml_tags(tags)}</way>')
    lines.append("</osm>")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def haversine_m(coords) -> float:
    """Independent great-circle length (mean Earth radius)."""
    r = 6371008.8
    total = 0.0
    for (lon1, lat1), (lon2, lat2) in zip(coords, coords[1:]):
        p1, p2 = math.radians(lat1), math.radians(lat2)
        dp, dl = p2 - p1, math.radians(lon2 - lon1)
        a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
        total += 2 * r * math.asin(math.sqrt(a))
    return total


@pytest.fixture()
def tiny_osm(tmp_path) -> Path:
    return write_osm_xml(tmp_path / "tiny.osm")


@pytest.fixture()
def tiny_segments(tiny_osm):
    return read_road_segments(tiny_osm)


def by_way(segments):
    out: dict[int, list] = {}
    for s in segments:
        out.setdefault(s.osm_way_id, []).append(s)
    return out


# --------------------------------------------------------------------------
# tiny network


def test_only_drivable_ways_are_kept(tiny_segments):
    assert set(by_way(tiny_segments)) == {100, 101, 102, 103, 104}


def test_ways_are_split_at_intersections(tiny_segments):
    ways = by_way(tiny_segments)
    # way 100 splits at node 1 (way 101) but NOT at node 12 (footway only)
    assert [(s.source_node, s.target_node) for s in ways[100]] == [(10, 1), (1, 40)]
    assert [len(s.coords) for s in ways[100]] == [3, 2]
    # way 101 splits at node 1
    assert [(s.source_node, s.target_node) for s in ways[101]] == [(21, 1), (1, 20)]
    # roundabout: closed way split where the exit joins (node 42); node 40 is
    # its start/end, so it is a vertex too
    assert [(s.source_node, s.target_node) for s in ways[103]] == [(40, 42), (42, 40)]
    assert [s.segment_index for s in ways[103]] == [0, 1]
    # every segment end is a graph vertex and node 1 joins four edges
    degree = Counter()
    for s in tiny_segments:
        degree[s.source_node] += 1
        degree[s.target_node] += 1
    assert degree[1] == 4
    assert 12 not in degree and 41 not in degree


def test_coordinates_are_lon_lat(tiny_segments):
    seg = by_way(tiny_segments)[100][0]
    assert seg.coords[0] == pytest.approx(NODES[10])
    assert seg.coords[-1] == pytest.approx(NODES[1])
    assert seg.wkt.startswith("LINESTRING(24.9380000 60.1700000, ")


def test_lengths_match_haversine(tiny_segments):
    for s in tiny_segments:
        expected = haversine_m([NODES[n] for n in _node_path(s)])
        assert s.length_m == pytest.approx(expected, rel=5e-3)
        assert s.length_m == pytest.approx(haversine_m(s.coords), rel=5e-3)
    # sanity: 0.002 deg of longitude at 60.17 N is about 111 m
    first = by_way(tiny_segments)[100][0]
    assert 105 < first.length_m < 117


def _node_path(segment):
    """Recover node ids of a segment from its coordinates (test helper)."""
    lookup = {v: k for k, v in NODES.items()}
    return [lookup[(round(x, 4), round(y, 4))] for x, y in segment.coords]


def test_two_way_costs(tiny_segments):
    for s in by_way(tiny_segments)[100]:
        assert not s.oneway
        assert s.maxspeed_kmh == 40
        assert s.maxspeed_from_tag
        assert s.cost_s == pytest.approx(s.length_m / (40 / 3.6))
        assert s.reverse_cost_s == pytest.approx(s.cost_s)


def test_oneway_yes_has_negative_reverse_cost(tiny_segments):
    for s in by_way(tiny_segments)[101]:
        assert s.oneway
        assert s.reverse_cost_s == -1
        assert s.cost_s > 0
        assert s.maxspeed_kmh == pytest.approx(48.28, abs=0.01)  # 30 mph
        assert s.cost_s == pytest.approx(s.length_m / (30 * 1.609344 / 3.6), rel=1e-3)
    # digitised direction kept: south (21) -> north (20)
    assert by_way(tiny_segments)[101][0].source_node == 21


def test_oneway_minus_one_is_reversed(tiny_segments):
    (seg,) = by_way(tiny_segments)[102]
    # drawn 21 -> 30 -> 31 but oneway=-1: travel allowed only 31 -> 21
    assert (seg.source_node, seg.target_node) == (31, 21)
    assert seg.coords[0] == pytest.approx(NODES[31])
    assert seg.coords[-1] == pytest.approx(NODES[21])
    assert seg.oneway and seg.cost_s > 0 and seg.reverse_cost_s == -1
    assert seg.maxspeed_kmh == 50  # FI:urban


def test_roundabout_implies_oneway_and_default_speed(tiny_segments):
    ways = by_way(tiny_segments)
    for s in ways[103]:
        assert s.oneway and s.reverse_cost_s == -1
        assert not s.maxspeed_from_tag
        assert s.maxspeed_kmh == DEFAULT_SPEED_KMH["tertiary"]
    (exit_,) = ways[104]
    assert not exit_.oneway and exit_.reverse_cost_s == exit_.cost_s


def test_addresses_from_node_and_building_way(tiny_osm):
    points = read_address_points(tiny_osm)
    assert [(p.osm_type, p.osm_id) for p in points] == [("node", 60), ("way", 200)]
    node, building = points
    assert (node.street, node.housenumber, node.postcode, node.city) == (
        "Testikatu", "5", "00100", "Helsinki")
    assert (node.lon, node.lat) == pytest.approx(NODES[60])
    assert (building.street, building.housenumber) == ("Rakennuskatu", "3A")
    assert building.postcode is None and building.city is None
    # centroid of the rectangle 70-71-72-73
    assert building.lon == pytest.approx(24.9361, abs=1e-7)
    assert building.lat == pytest.approx(60.16905, abs=1e-7)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("50", 50.0),
        ("50 km/h", 50.0),
        ("30 mph", 48.28),
        ("20mph", 32.19),
        ("FI:urban", 50.0),
        ("FI:rural", 80.0),
        ("DE:zone30", 30.0),
        ("walk", 7.0),
        ("60;40", 40.0),
        ("none", None),
        ("signals", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_maxspeed(value, expected):
    result = parse_maxspeed(value)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected, abs=0.01)


# --------------------------------------------------------------------------
# errors


def test_missing_file_raises(tmp_path):
    with pytest.raises(OSMReadError, match="not found"):
        read_road_segments(tmp_path / "nope.osm.pbf")
    with pytest.raises(OSMReadError):
        read_address_points(tmp_path / "nope.osm.pbf")


@pytest.mark.parametrize("name", ["garbage.osm.pbf", "garbage.osm"])
def test_garbage_file_raises(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"this is not OpenStreetMap data \x00\xff\x13" * 50)
    with pytest.raises(OSMReadError):
        read_road_segments(path)
    with pytest.raises(OSMReadError):
        read_address_points(path)


@needs_helsinki
def test_truncated_pbf_raises(tmp_path):
    path = tmp_path / "truncated.osm.pbf"
    path.write_bytes(HELSINKI_PBF.read_bytes()[: HELSINKI_PBF.stat().st_size // 2])
    with pytest.raises(OSMReadError):
        read_road_segments(path)


def test_empty_file_raises(tmp_path):
    path = tmp_path / "empty.osm.pbf"
    path.write_bytes(b"")
    with pytest.raises(OSMReadError, match="empty"):
        read_road_segments(path)


# --------------------------------------------------------------------------
# bundled Helsinki extract



@pytest.fixture(scope="module")
def helsinki_segments():
    return read_road_segments(HELSINKI_PBF)


@needs_helsinki
def test_helsinki_network(helsinki_segments):
    segs = helsinki_segments
    assert 800 < len(segs) < 1200
    assert {s.highway for s in segs} <= {
        "primary", "primary_link", "secondary", "secondary_link", "tertiary", "tertiary_link",
        "unclassified", "residential", "living_street", "service", "road",
        "trunk", "trunk_link", "motorway", "motorway_link"}
    for s in segs:
        assert s.length_m > 0
        assert len(s.coords) >= 2
        assert s.coords[0] != s.coords[-1] or s.source_node == s.target_node
        for lon, lat in s.coords:
            assert 24.9 < lon < 25.0 and 60.15 < lat < 60.19
        assert s.cost_s == pytest.approx(s.length_m / (s.maxspeed_kmh / 3.6))
        if s.oneway:
            assert s.reverse_cost_s == -1
        else:
            assert s.reverse_cost_s == pytest.approx(s.cost_s)
        assert s.length_m == pytest.approx(haversine_m(s.coords), rel=5e-3)
    # the network is (almost entirely) one connected graph
    parent: dict[int, int] = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for s in segs:
        parent[find(s.source_node)] = find(s.target_node)
    sizes = Counter(find(v) for v in list(parent))
    assert max(sizes.values()) / len(parent) > 0.95
    # split at intersections: no edge passes through another edge's end point
    end_points = {c for s in segs for c in (s.coords[0], s.coords[-1])}
    for s in segs:
        assert not end_points.intersection(s.coords[1:-1]), s


@needs_helsinki
def test_helsinki_addresses():
    points = read_address_points(HELSINKI_PBF)
    assert 1300 < len(points) < 1600
    kinds = Counter(p.osm_type for p in points)
    assert kinds["node"] > 1000 and kinds["way"] > 50
    assert len({(p.osm_type, p.osm_id) for p in points}) == len(points)
    for p in points:
        assert p.street and p.housenumber
        assert 24.9 < p.lon < 25.0 and 60.15 < p.lat < 60.19


@needs_helsinki
def test_committed_derived_files_match_reader(helsinki_segments):
    roads = REPO / "sample_data" / "helsinki_roads.csv.gz"
    addresses = REPO / "sample_data" / "helsinki_addresses.csv"
    if not roads.exists() or not addresses.exists():
        pytest.skip("derived sample files absent")
    with gzip.open(roads, "rt", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(helsinki_segments)
    assert [int(r["osm_way_id"]) for r in rows] == [s.osm_way_id for s in helsinki_segments]
    with addresses.open(encoding="utf-8") as fh:
        assert sum(1 for _ in csv.DictReader(fh)) == len(read_address_points(HELSINKI_PBF))
