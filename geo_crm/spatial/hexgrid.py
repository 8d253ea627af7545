"""Hexagonal grid cells in EPSG:3067 (ETRS-TM35FIN), identical to PostGIS
`ST_HexagonGrid(size, bounds)` / `ST_Hexagon(size, i, j)` with origin (0, 0).

`size` is the hexagon's edge length (= circumradius) in metres, as in PostGIS. The
cells are flat-topped: cell (i, j) has its centre at x = 1.5·size·i,
y = √3·size·j (+ √3/2·size when i is odd).

Instead of joining every point against every cell of a grid over the extent (which
grows with the area), a point's cell is computed arithmetically: the containing hexagon
is the one with the nearest centre (hexagons are the Voronoi cells of their centres),
and that centre lies in column floor(x / 1.5·size) or the next one. The output
geometry of a non-empty cell is `ST_Hexagon(size, i, j)`: the same cell
`ST_HexagonGrid` returns.
"""
from __future__ import annotations

import math

SQRT3 = math.sqrt(3.0)
MIN_HEX_SIZE_M = 100
MAX_HEX_SIZE_M = 200_000


def cell_of(x: float, y: float, size: float) -> tuple[int, int]:
    """Python reference: (i, j) of the hexagon containing (x, y) in EPSG:3067 metres."""
    best = None
    i0 = math.floor(x / (1.5 * size))
    for i in (i0, i0 + 1):
        off = SQRT3 / 2 * size if i % 2 else 0.0
        j = round((y - off) / (SQRT3 * size))
        cx, cy = 1.5 * size * i, SQRT3 * size * j + off
        d = (x - cx) ** 2 + (y - cy) ** 2
        if best is None or d < best[0]:
            best = (d, i, j)
    return best[1], best[2]


def cell_sql(x: str, y: str, size_param: str = ":size") -> tuple[str, str]:
    """SQL expressions (i, j) for the hexagon containing (x, y) (EPSG:3067 metres).

    `x`, `y` are SQL expressions (e.g. `ST_X(g)`); `size_param` a bound parameter.
    """
    s = size_param
    i0 = f"floor(({x}) / (1.5 * {s}))"
    i1 = f"({i0} + 1)"

    def off(i):
        return f"(CASE WHEN mod(({i})::bigint, 2) <> 0 THEN {SQRT3 / 2!r} * {s} ELSE 0 END)"

    def j(i):
        return f"round((({y}) - {off(i)}) / ({SQRT3!r} * {s}))"

    def d2(i):
        return (f"(power(({x}) - 1.5 * {s} * ({i}), 2) + "
                f"power(({y}) - ({SQRT3!r} * {s} * {j(i)} + {off(i)}), 2))")
    pick0 = f"({d2(i0)} <= {d2(i1)})"
    i_expr = f"(CASE WHEN {pick0} THEN {i0} ELSE {i1} END)::integer"
    j_expr = f"(CASE WHEN {pick0} THEN {j(i0)} ELSE {j(i1)} END)::integer"
    return i_expr, j_expr


def cell_area_km2(size: float) -> float:
    """Planar area of one hexagon in EPSG:3067 (close to geodesic in Finland: TM scale
    factor 0.9996 at the central meridian, within ±0.1% across the country)."""
    return 3 * SQRT3 / 2 * size * size / 1e6
