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


def cells_sql(source: str, size_param: str = ":size", keep: str = "id") -> str:
    """SQL of (`keep`, i, j): the hexagon of every row of `source` (a subquery with
    columns `keep`, x, y in EPSG:3067 metres).

    The same arithmetic as `cell_sql`, term for term (so the same cell for every point,
    boundaries included), but each intermediate is computed once per row: PostgreSQL
    does not share common subexpressions, and the one-expression form evaluates the
    column, offset and row terms ~50 times per row, which dominated hex density at a
    million customers. Each stage is its own subquery, fenced with OFFSET 0 so the
    planner does not inline it back."""
    s = size_param

    def off(i):
        return f"(CASE WHEN mod(({i})::bigint, 2) <> 0 THEN {SQRT3 / 2!r} * {s} ELSE 0 END)"

    def j(o):
        return f"round(((y) - {o}) / ({SQRT3!r} * {s}))"

    def d2(i, jj, o):
        return f"(power((x) - 1.5 * {s} * ({i}), 2) + power((y) - ({SQRT3!r} * {s} * {jj} + {o}), 2))"
    s1 = f"SELECT {keep}, x, y, floor((x) / (1.5 * {s})) AS i0 FROM ({source}) src OFFSET 0"
    # the offsets are numeric constants that every use with a double casts to float8 (a
    # slow numeric-to-text-to-double conversion); cast once here: the same values
    s2 = (f"SELECT {keep}, x, y, i0, (i0 + 1) AS i1, {off('i0')}::float8 AS o0, "
          f"{off('(i0 + 1)')}::float8 AS o1 FROM ({s1}) s1 OFFSET 0")
    s3 = f"SELECT {keep}, x, y, i0, i1, o0, o1, {j('o0')} AS j0, {j('o1')} AS j1 FROM ({s2}) s2 OFFSET 0"
    s4 = (f"SELECT {keep}, i0, i1, j0, j1, ({d2('i0', 'j0', 'o0')} <= {d2('i1', 'j1', 'o1')}) AS pick0 "
          f"FROM ({s3}) s3 OFFSET 0")
    return (f"SELECT {keep}, (CASE WHEN pick0 THEN i0 ELSE i1 END)::integer AS i, "
            f"(CASE WHEN pick0 THEN j0 ELSE j1 END)::integer AS j FROM ({s4}) s4")
