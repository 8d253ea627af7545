"""Vectorised great-circle travel matrices (a fallback when no road network is available)."""

from __future__ import annotations

import numpy as np

#: Mean Earth radius in metres (IUGG).
EARTH_RADIUS_M = 6_371_008.8


def haversine_matrix_m(lons, lats) -> np.ndarray:
    """Great-circle distances between all pairs of points.

    ``lons``/``lats`` are 1-D sequences of equal length in decimal degrees
    (WGS84).  Returns an ``(n, n)`` ``int64`` matrix of distances in metres,
    rounded to the nearest metre, with a zero diagonal.
    """
    lon = np.radians(np.asarray(lons, dtype=float))
    lat = np.radians(np.asarray(lats, dtype=float))
    if lon.ndim != 1 or lon.shape != lat.shape:
        raise ValueError("lons and lats must be 1-D arrays of the same length")
    dlat = lat[None, :] - lat[:, None]
    dlon = lon[None, :] - lon[:, None]
    a = np.sin(dlat / 2) ** 2 + np.cos(lat)[:, None] * np.cos(lat)[None, :] * np.sin(dlon / 2) ** 2
    d = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    out = np.rint(d).astype(np.int64)
    np.fill_diagonal(out, 0)
    return out


def travel_matrices(lons, lats, *, detour_factor: float = 1.3, speed_kmh: float = 50):
    """Approximate road ``(distance_m, duration_s)`` matrices from coordinates.

    ``distance_m`` = great-circle metres x ``detour_factor`` (roads are not
    straight), rounded to whole metres; ``duration_s`` = that road distance
    driven at ``speed_kmh`` kilometres per hour, rounded to whole seconds.
    Both are ``int64`` ``(n, n)`` arrays with zero diagonals.
    """
    if detour_factor <= 0 or speed_kmh <= 0:
        raise ValueError("detour_factor and speed_kmh must be positive")
    gc = haversine_matrix_m(lons, lats).astype(float)
    road = gc * detour_factor
    distance = np.rint(road).astype(np.int64)
    duration = np.rint(road / (speed_kmh / 3.6)).astype(np.int64)
    return distance, duration
