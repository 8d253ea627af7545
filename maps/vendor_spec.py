"""What front-end files geo-crm vendors from npm, and where they land.

This module is deliberately dependency-free (no folium, no Flask): it is read
both by :mod:`maps.assets` (to build local URLs) and by
``scripts/vendor_assets.py`` (loaded by file path, so that script runs with any
Python 3.11 even before the virtualenv has folium).

Every entry maps a *logical name* to a file inside an npm package. The file is
copied to ``<static vendor dir>/<package dir>/<dest>`` where ``<package dir>``
is the npm name with ``@scope/`` flattened to ``scope__``.
"""

from __future__ import annotations

# npm package -> licence (SPDX id) and the licence file shipped in the package.
PACKAGES: dict[str, dict[str, str]] = {
    "leaflet": {"license": "BSD-2-Clause", "license_file": "LICENSE"},
    "leaflet.markercluster": {"license": "MIT", "license_file": "MIT-LICENCE.txt"},
    # package.json has no "license" field; LICENSE in the tarball is BSD-2-Clause.
    "leaflet.heat": {"license": "BSD-2-Clause", "license_file": "LICENSE"},
    "@geoman-io/leaflet-geoman-free": {"license": "MIT", "license_file": "LICENSE"},
    # Beerware per package.json (no licence file in the tarball); the bundled
    # build also contains pbf and vector-tile (BSD-3-Clause, Mapbox).
    "leaflet.vectorgrid": {"license": "Beerware", "license_file": ""},
    "chart.js": {"license": "MIT", "license_file": "LICENSE.md"},
}

# logical name -> (npm package, source path inside the package, dest path under the package dir)
FILES: dict[str, tuple[str, str, str]] = {
    "leaflet_js": ("leaflet", "dist/leaflet.js", "leaflet.js"),
    "leaflet_css": ("leaflet", "dist/leaflet.css", "leaflet.css"),
    # leaflet.css references images/*.png relatively; Leaflet also derives the
    # default marker icon path from it.
    "leaflet_images": ("leaflet", "dist/images", "images"),
    "markercluster_js": ("leaflet.markercluster", "dist/leaflet.markercluster.js", "leaflet.markercluster.js"),
    "markercluster_css": ("leaflet.markercluster", "dist/MarkerCluster.css", "MarkerCluster.css"),
    "markercluster_default_css": (
        "leaflet.markercluster",
        "dist/MarkerCluster.Default.css",
        "MarkerCluster.Default.css",
    ),
    "leaflet_heat_js": ("leaflet.heat", "dist/leaflet-heat.js", "leaflet-heat.js"),
    "geoman_js": ("@geoman-io/leaflet-geoman-free", "dist/leaflet-geoman.min.js", "leaflet-geoman.min.js"),
    "geoman_css": ("@geoman-io/leaflet-geoman-free", "dist/leaflet-geoman.css", "leaflet-geoman.css"),
    "vectorgrid_js": (
        "leaflet.vectorgrid",
        "dist/Leaflet.VectorGrid.bundled.min.js",
        "Leaflet.VectorGrid.bundled.min.js",
    ),
    "chartjs_js": ("chart.js", "dist/chart.umd.min.js", "chart.umd.min.js"),
}


def package_dir(package: str) -> str:
    """Directory name used for an npm package under the vendor folder."""
    return package.replace("@", "").replace("/", "__")


def relative_path(logical_name: str) -> str:
    """Path of a vendored file relative to the vendor folder (always with '/')."""
    package, _src, dest = FILES[logical_name]
    return f"{package_dir(package)}/{dest}"
