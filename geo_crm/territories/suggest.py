"""Suggest a balanced, contiguous alignment of K territories.

Units are hexagon cells (edge `hex_size_m`, EPSG:3067, see spatial/hexgrid.py) clipped to
the country (union of regions), each with a load: `customers` (visible customers),
`revenue` (12 months, non-cancelled orders) or `workload` (1 per customer + 1 per open
opportunity + 1 per open service record). Contiguity is hexagon adjacency (libpysal
DistanceBand at √3·size). Four starting splits, each made contiguous (`repair`) and
refined, the most balanced kept (`partition`):

1. recursive load bisection (`bisect`): split the cells into two contiguous halves whose
   loads are in the ratio ⌊K/2⌋ : ⌈K/2⌉, recurse. Each cut is a two-site additively weighted
   graph Voronoi {v : D(a,v) − D(b,v) ≤ c} between the extreme cells a, b along one of 8
   sweep directions (both sides are shortest-path trees, hence contiguous for any c),
   scored by the balance its halves can still reach given their heavy cells (water-filling,
   as `cv_floor`). Dense areas get several territories by construction — this is what
   shares the capital region among territories for K ≥ 6;
2. capacitated region growing (`grow`): K far-apart seeds (k-means++-style farthest point
   choice, from the heaviest cell); the lightest territory repeatedly takes its heaviest
   unassigned neighbouring cell;
3. balanced additively weighted graph Voronoi (`offsets`) from the same far-apart seeds,
4. and from load-weighted k-means seeds.
Cells no seed reaches (islands) join the nearest territory. `refine` then moves boundary
cells to a lighter adjacent territory while that lowers the sum of squared deviations of
the loads, never splitting a territory's connected pieces, with a short bounded tabu walk
out of local optima; the winner is polished once more allowing empty cells to move too
(they do not change the loads but open boundaries). Deterministic (no randomness; the time
budgets are safety bounds the dev-DB cases stay well inside).

Balance cannot beat the cell granularity: `cv_floor` (also in the response properties) is
the lowest CV any split of the cells can reach when single cells outweigh the mean.
Measured CV (floor) on the dev DB (5,000 customers, as_of 2026-11-01), 10 km cells (API
default), K=5/8/10, before bisection → now:
  customers 0.029→0.001 (0), 0.509→0.109 (0.109), 0.541→0.206 (0.206);
  revenue   0.082→0.007 (0), 0.480→0.158 (0.158), 0.523→0.261 (0.261);
  workload  0.006→0.000 (0), 0.507→0.109 (0.109), 0.544→0.207 (0.207).
  25 km cells, K=3/5/8/10: all three metrics at their floor (±0.001), e.g. customers
  0.001, 0.302, 0.592, 0.736 — the Helsinki cell alone outweighs the mean for K ≥ 5.
Test sample (600 customers, seed 7), 10 km, K=8: customers 0.428→0.121 (0.121), revenue
0.431→0.006 (0.006), workload 0.578→0.124 (0.124); K=5 ≤ 0.008 for all metrics.
`partition` takes 0.2–0.8 s for K ≤ 10 on the dev DB's 1,440 cells at 10 km, ~1.5 s at K=50.

The result (GeoJSON with per-territory loads and the imbalance) is shown beside the
current alignment; `accept` writes it in ONE transaction.
"""
from __future__ import annotations

import heapq
import json
from datetime import date, timedelta

import numpy as np
from shapely import wkb
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from geo_crm.customers.filters import FilterError
from geo_crm.models import Customer, Opportunity, Order, ServiceRecord, Territory, TerritoryHistory
from geo_crm.security.scope import Scope
from geo_crm.spatial.density import _compile, _rename, _run
from geo_crm.spatial.hexgrid import SQRT3, cell_sql
from geo_crm.territories.geometry import as_multi, ewkt
from geo_crm.territories.reports import imbalance

METRICS = ("customers", "revenue", "workload")
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22")


def _units(session: Session, scope: Scope, metric: str, size: float, as_of: date):
    ci, cj = cell_sql("c.x", "c.y", "%(size)s")
    cf_sql, cf_params = _rename(*_compile(session, select(Customer.id).where(scope.customer_filter())), "c_")
    if metric == "customers":
        load = "count(*)::float8"
        extra, params = "", {}
    elif metric == "revenue":
        of_sql, params = _rename(*_compile(session, select(Order.id).where(scope.order_filter())), "o_")
        load = "coalesce(sum(rv.revenue), 0)::float8"
        extra = (f"LEFT JOIN (SELECT customer_id, sum(total_amount) AS revenue FROM sales_order "
                 f"WHERE status <> 'cancelled' AND order_date > %(since)s AND order_date <= %(as_of)s "
                 f"AND id IN ({of_sql}) GROUP BY customer_id) rv ON rv.customer_id = c.id")
    else:
        op_sql, p1 = _rename(*_compile(session, select(Opportunity.id).where(scope.opportunity_filter())), "p_")
        sr_sql, p2 = _rename(*_compile(session, select(ServiceRecord.id).where(scope.service_record_filter())), "s_")
        params = {**p1, **p2}
        load = "(count(*) + coalesce(sum(wo.n), 0) + coalesce(sum(ws.n), 0))::float8"
        extra = (f"LEFT JOIN (SELECT customer_id, count(*) AS n FROM opportunity WHERE status = 'open' "
                 f"AND id IN ({op_sql}) GROUP BY customer_id) wo ON wo.customer_id = c.id "
                 f"LEFT JOIN (SELECT customer_id, count(*) AS n FROM service_record "
                 f"WHERE status IN ('new', 'assigned', 'in_progress') AND id IN ({sr_sql}) GROUP BY customer_id) ws "
                 f"ON ws.customer_id = c.id")
    sql = f"""
    WITH ext AS (SELECT ST_Transform(ST_SetSRID(ST_Extent(geom)::geometry, 4326), 3067) AS g FROM region),
    grid AS (SELECT h.i, h.j, h.geom FROM ext, ST_HexagonGrid(%(size)s, ext.g) h
              WHERE EXISTS (SELECT 1 FROM region_part rp WHERE ST_Intersects(rp.geom, ST_Transform(h.geom, 4326)))),
    loads AS (SELECT {ci} AS i, {cj} AS j, {load} AS load
                FROM (SELECT id, ST_X(g) AS x, ST_Y(g) AS y FROM (SELECT id, ST_Transform(geom, 3067) AS g
                        FROM customer WHERE geom IS NOT NULL AND id IN ({cf_sql})) c0 OFFSET 0) c {extra}
               GROUP BY 1, 2)
    SELECT g.i, g.j, coalesce(l.load, 0) AS load, ST_X(ST_Centroid(g.geom)) AS x, ST_Y(ST_Centroid(g.geom)) AS y,
           ST_AsBinary(ST_Transform(g.geom, 4326)) AS wkb
      FROM grid g LEFT JOIN loads l ON l.i = g.i AND l.j = g.j
     ORDER BY g.i, g.j"""
    return _run(session, sql, {**cf_params, **params, "size": size, "since": as_of - timedelta(days=365),
                               "as_of": as_of})


def cells(session: Session, scope: Scope, metric: str, hex_size_m: float, as_of: date):
    """The hexagon cells with their load: (rows, xy centroids in EPSG:3067 metres, load per
    cell, neighbours = adjacency lists by lattice index)."""
    rows = _units(session, scope, metric, float(hex_size_m), as_of)
    from libpysal.weights import DistanceBand
    xy = np.array([[r["x"], r["y"]] for r in rows]).reshape(-1, 2)
    # adjacency by cell index (centroids of clipped cells move, so use the lattice centres)
    centres = np.array([[1.5 * hex_size_m * r["i"],
                         SQRT3 * hex_size_m * r["j"] + (SQRT3 / 2 * hex_size_m if r["i"] % 2 else 0)] for r in rows])
    if len(rows) < 2:
        return rows, xy, np.array([float(r["load"]) for r in rows]), [[] for _ in rows]
    w = DistanceBand(centres, threshold=SQRT3 * hex_size_m * 1.01, binary=True, silence_warnings=True)
    neighbours = [sorted(int(v) for v in w.neighbors[i]) for i in range(len(rows))]
    load = np.array([float(r["load"]) for r in rows])
    return rows, xy, load, neighbours


def _seeds(xy: np.ndarray, load: np.ndarray, k: int) -> list[int]:
    """K seed units far apart in load-weighted space, from the heaviest unit (deterministic)."""
    seeds = [int(np.argmax(load))]
    d = np.full(len(load), np.inf)
    for _ in range(1, k):
        d = np.minimum(d, np.hypot(*(xy - xy[seeds[-1]]).T))
        score = d * (1.0 + load / (load.max() or 1.0))
        score[seeds] = -1
        seeds.append(int(np.argmax(score)))
    return seeds


def _lloyd_seeds(xy: np.ndarray, load: np.ndarray, k: int, iters: int = 20) -> list[int]:
    """Seeds at the load-weighted k-means centres (Lloyd from `_seeds`), each snapped to the
    nearest loaded unit: puts several seeds where the load concentrates (deterministic)."""
    idx = np.where(load > 0)[0]
    if len(idx) < k:
        return _seeds(xy, load, k)
    pts, wts = xy[idx], load[idx]
    centres = xy[_seeds(xy, load, k)].astype(float)
    for _ in range(iters):
        lab = np.argmin(((pts[:, None, :] - centres[None, :, :]) ** 2).sum(-1), axis=1)
        for t in range(k):
            m = lab == t
            if m.any():
                centres[t] = np.average(pts[m], axis=0, weights=wts[m])
    seeds: list[int] = []
    for c in centres:
        order = idx[np.argsort(((pts - c) ** 2).sum(-1), kind="stable")]
        seeds.append(int(next(u for u in order if u not in seeds)))
    return seeds


def offsets(xy: np.ndarray, load: np.ndarray, neighbours, k: int, iters: int = 300,
            seeds: list[int] | None = None) -> np.ndarray:
    """Balanced additively weighted graph Voronoi: unit v goes to the territory t minimising
    λ_t + D(seed_t, v), D the shortest path along cell adjacency (edge = centroid distance,
    metres). Every such region is a shortest-path tree, hence contiguous. The offsets λ are
    raised for heavy and lowered for light territories (sub-gradient steps, shrinking) and
    the most balanced labelling is kept; λ_t stays below what would hand seed_t to another
    territory. Units no seed reaches (islands) join the nearest seed."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra
    n = len(load)
    seeds = seeds or _seeds(xy, load, k)
    src, dst = _edges(neighbours)
    if not len(src):
        return np.array([int(np.argmin([np.hypot(*(xy[u] - xy[s])) for s in seeds])) for u in range(n)])
    length = np.hypot(*(xy[src] - xy[dst]).T) + 1e-3
    dist = dijkstra(csr_matrix((length, (src, dst)), shape=(n, n)), indices=seeds)     # k × n metres
    cap = dist[:, seeds]                                                              # cap[o, t] = D(seed_o, seed_t)
    capx = np.where(np.eye(k, dtype=bool), np.inf, cap)                               # o ≠ t only
    reach = np.isfinite(dist).any(axis=0)
    dfin = np.where(np.isfinite(dist), dist, np.inf)
    scale = float(np.median(length)) * max(4.0, np.sqrt(n / k))
    lam = np.zeros(k)
    mean = load.sum() / k
    best, best_sse = None, np.inf
    for it in range(iters):
        label = np.argmin(dfin + lam[:, None], axis=0)
        totals = np.bincount(label[reach], weights=load[reach], minlength=k)
        sse = float(((totals - totals.mean()) ** 2).sum())
        if sse < best_sse - 1e-9:
            best, best_sse = label.copy(), sse
        if best_sse <= 1e-12 or mean <= 0:
            break
        lam += scale * (totals - mean) / mean / (1.0 + it / 30.0)
        lam -= lam.min()
        others = (lam[:, None] + capx).min(axis=0)   # keep each seed in its own territory
        lam = np.where(np.isfinite(others), np.minimum(lam, others - 1e-3), lam)
    label = best
    for u in np.where(~reach)[0]:
        label[u] = int(np.argmin([np.hypot(*(xy[u] - xy[s])) for s in seeds]))
    return label


def partition(xy: np.ndarray, load: np.ndarray, neighbours, k: int) -> np.ndarray:
    """The most balanced (smallest sum of squared deviations) of four refined starts:
    recursive load bisection, capacitated region growing, balanced offsets from far-apart
    seeds, balanced offsets from load-weighted k-means seeds (earlier starts win ties); each
    start is made contiguous first (`repair`). The winner is then polished by a refinement
    that may also move empty cells (`refine(move_empty=True)`), which opens boundaries the
    loaded cells alone cannot cross."""
    best, best_sse = None, np.inf
    starts = (bisect, grow, offsets, lambda *a: offsets(*a, seeds=_lloyd_seeds(xy, load, k)))
    for start in starts:
        label = refine(repair(start(xy, load, neighbours, k), load, neighbours, k), load, neighbours, k)
        sse = _sse(label, load, k)
        if sse < best_sse - 1e-9:
            best, best_sse = label, sse
    if best_sse > 1e-12:
        best = refine(best, load, neighbours, k, move_empty=True)
    return best


def _sse(label: np.ndarray, load: np.ndarray, k: int) -> float:
    totals = np.bincount(label, weights=load, minlength=k)
    return float(((totals - totals.mean()) ** 2).sum())


def repair(label: np.ndarray, load: np.ndarray, neighbours, k: int) -> np.ndarray:
    """Make every territory one connected piece per connected part of the cell graph: a
    territory keeps its heaviest piece (ties: most cells, then lowest unit) and each other
    piece joins the adjacent territory it shares most borders with. Pieces with no other
    territory around (whole islands) stay. Offsets can leave such stray pieces when ties
    or clamped offsets hand a seed's surroundings to another territory."""
    label = np.asarray(label).copy()
    for _ in range(4 * k):
        changed = False
        for t in range(k):
            pieces = _pieces(label, neighbours, t)
            if len(pieces) < 2:
                continue
            keep = max(pieces, key=lambda p: (load[p].sum(), len(p), -min(p)))
            for p in pieces:
                if p is keep:
                    continue
                inside = set(p)
                border = [int(label[v]) for u in p for v in neighbours[u] if v not in inside and label[v] != t]
                if border:
                    label[p] = int(np.bincount(border, minlength=k).argmax())
                    changed = True
        if not changed:
            break
    return label


def _pieces(label: np.ndarray, neighbours, t: int) -> list[list[int]]:
    units = np.where(label == t)[0]
    seen: set[int] = set()
    out = []
    for s0 in units.tolist():
        if s0 in seen:
            continue
        piece, stack = [s0], [s0]
        seen.add(s0)
        while stack:
            for v in neighbours[stack.pop()]:
                if v not in seen and label[v] == t:
                    seen.add(v)
                    piece.append(v)
                    stack.append(v)
        out.append(piece)
    return out


def grow(xy: np.ndarray, load: np.ndarray, neighbours: list[list[int]], k: int) -> np.ndarray:
    """Capacitated region growing (see module docstring). Returns a label 0..k-1 per unit."""
    n = len(load)
    seeds = _seeds(xy, load, k)
    label = np.full(n, -1)
    totals = np.zeros(k)
    frontier: list[list] = [[] for _ in range(k)]
    for t, s in enumerate(seeds):
        label[s] = t
        totals[t] += load[s]
    def push(t, u):
        for v in neighbours[u]:
            if label[v] < 0:
                heapq.heappush(frontier[t], (-load[v], float(np.hypot(*(xy[v] - xy[seeds[t]]))), v))
    for t, s in enumerate(seeds):
        push(t, s)
    active = set(range(k))
    while active:
        t = min(active, key=lambda a: (totals[a], a))
        while frontier[t] and label[frontier[t][0][2]] >= 0:
            heapq.heappop(frontier[t])
        if not frontier[t]:
            active.discard(t)
            continue
        _, _, v = heapq.heappop(frontier[t])
        label[v] = t
        totals[t] += load[v]
        push(t, v)
    for u in np.where(label < 0)[0]:   # islands: nearest seed
        label[u] = int(np.argmin([np.hypot(*(xy[u] - xy[s])) for s in seeds]))
    return label


def cv_floor(load: np.ndarray, k: int) -> float:
    """Lowest CV any K-way split of these cells can reach, from granularity alone: a
    territory holding cell c carries at least load(c), so with the K heaviest cells
    c1 ≥ … ≥ cK the loads are at best max(c_i, level), the level filling the rest
    (water-filling). 0 when no cell is heavier than the mean territory load."""
    total = float(np.sum(load))
    if k < 1 or total <= 0:
        return 0.0
    top = np.sort(np.asarray(load, dtype=float))[::-1][:k]
    top = np.concatenate([top, np.zeros(k - len(top))])
    for m in range(k):                        # m heaviest cells stand above the level
        level = (total - top[:m].sum()) / (k - m)
        if top[m] <= level + 1e-12:
            loads = np.concatenate([top[:m], np.full(k - m, level)])
            return float(np.std(loads) / np.mean(loads))
    return float(np.std(top) / np.mean(top))


def _keeps_components(label: np.ndarray, nbsets: list[set[int]], a: int, u: int) -> bool:
    """True when unit `u` can leave territory `a` without splitting a connected piece of `a`
    (the number of connected pieces of `a` does not grow; an island piece of one unit may
    go). `a` must keep at least one unit. Local test first: if u's neighbours in `a` are
    connected to each other among u's neighbours (always so on a hexagon lattice when they
    form one arc), nothing can split; else a BFS in `a` without `u` from one of them must
    reach all the others."""
    same = [v for v in nbsets[u] if label[v] == a]
    if not same:
        return bool(np.any(label == a) and (label == a).sum() > 1)
    ring = set(same)
    seen, stack = {same[0]}, [same[0]]
    while stack:
        x = stack.pop()
        for y in nbsets[x] & ring:
            if y not in seen:
                seen.add(y)
                stack.append(y)
    if len(seen) == len(ring):
        return True
    todo = ring - seen
    while stack or todo:               # continue the BFS over the whole territory
        if not stack:
            break
        x = stack.pop()
        for y in nbsets[x]:
            if y != u and y not in seen and label[y] == a:
                seen.add(y)
                todo.discard(y)
                if not todo:
                    return True
                stack.append(y)
    return not todo


def _edges(neighbours) -> tuple[np.ndarray, np.ndarray]:
    src = np.array([u for u, nb in enumerate(neighbours) for _ in nb], dtype=np.int64)
    dst = np.array([v for nb in neighbours for v in nb], dtype=np.int64)
    return src, dst


def refine(label: np.ndarray, load: np.ndarray, neighbours, k: int, max_iter: int = 4000,
           time_budget_s: float = 1.0, move_empty: bool = False) -> np.ndarray:
    """Local search after region growing, minimising the sum of squared deviations of the
    territory loads from their mean (same as minimising the CV, the total being fixed).

    A move takes a loaded unit `u` from territory a to an adjacent territory b; it changes
    the objective by 2·w·(T_b − T_a + w) (w = load of u), so it improves when T_a − T_b > w.
    Only moves that keep every territory's connected pieces intact are allowed
    (`_keeps_components`), so contiguity from region growing is preserved. Steepest descent
    first; at a local optimum a short tabu search takes the least-bad non-tabu move (a moved
    unit may not move again for a while, unless that reaches a new best) to walk out of it;
    the best labelling seen is returned. Deterministic (ties by unit index); bounded by
    `max_iter` moves and `time_budget_s` seconds. Empty cells (load 0) move only with
    `move_empty`: such moves leave the objective unchanged and only go from a heavier to a
    lighter territory, which lets the lighter one reach loaded cells behind them."""
    import time
    label = np.asarray(label).copy()
    if k < 2 or len(load) == 0:
        return label
    nbsets = [set(nb) for nb in neighbours]
    src, dst = _edges(neighbours)
    if not len(src):
        return label
    if not move_empty:
        loaded = load[src] > 0
        src, dst = src[loaded], dst[loaded]
    totals = np.bincount(label, weights=load, minlength=k).astype(float)
    sse = float(((totals - totals.mean()) ** 2).sum())
    best_sse, best_label = sse, label.copy()
    tabu_until = np.zeros(len(load), dtype=np.int64)
    tenure = max(7, int(np.sqrt(len(load))))
    stall, max_stall = 0, max(50, 4 * tenure)
    deadline = time.perf_counter() + time_budget_s
    w = load[src]
    for it in range(1, max_iter + 1):
        la, lb = label[src], label[dst]
        cross = la != lb
        if not cross.any():
            break
        ta, tb = totals[la], totals[lb]
        gain = np.where(cross, 2.0 * w * (ta - tb - w), -np.inf)      # objective decrease
        ok_tabu = (tabu_until[src] <= it) | (sse - gain < best_sse - 1e-9)
        gain = np.where(ok_tabu, gain, -np.inf)
        order = np.lexsort((src, tb - ta, -gain))              # best gain, heavier → lighter, unit index
        moved = False
        for e in order:
            g = gain[e]
            if not np.isfinite(g):
                break
            u, a, b = int(src[e]), int(la[e]), int(lb[e])
            if g <= 1e-9 and ta[e] <= tb[e]:
                continue                                                 # never push load uphill
            if not _keeps_components(label, nbsets, a, u):
                continue
            label[u] = b
            totals[a] -= load[u]
            totals[b] += load[u]
            sse -= g
            tabu_until[u] = it + tenure
            moved = True
            break
        if not moved:
            break
        if sse < best_sse - 1e-9:
            best_sse, best_label, stall = sse, label.copy(), 0
        else:
            stall += 1
            if stall >= max_stall:
                break
        if best_sse <= 1e-12 or time.perf_counter() > deadline:
            break
    return best_label


def suggest(session: Session, scope: Scope, k: int, metric: str = "customers", hex_size_m: float = 25_000,
            as_of: date | None = None) -> dict:
    if metric not in METRICS:
        raise FilterError("metric", "must be customers, revenue or workload")
    if not 2 <= k <= 50:
        raise FilterError("k", "must be between 2 and 50")
    if not 5_000 <= hex_size_m <= 100_000:
        raise FilterError("hex_size_m", "must be between 5000 and 100000 metres")
    as_of = as_of or date.today()
    rows, xy, load, neighbours = cells(session, scope, metric, float(hex_size_m), as_of)
    if len(rows) < k:
        raise FilterError("k", f"only {len(rows)} cells: use smaller cells or fewer territories")
    label = partition(xy, load, neighbours, k)
    import shapely
    feats = []
    for t in range(k):
        idx = np.where(label == t)[0]
        union = shapely.union_all([wkb.loads(bytes(rows[i]["wkb"])) for i in idx])
        clipped = session.execute(text(
            "SELECT ST_AsBinary(ST_CollectionExtract(ST_Intersection(ST_GeomFromEWKT(:g), "
            "(SELECT ST_Union(geom) FROM region)), 3))"), {"g": ewkt(union)}).scalar()
        geom = as_multi(shapely.make_valid(wkb.loads(bytes(clipped))))
        feats.append({"type": "Feature", "id": t + 1, "geometry": shapely.geometry.mapping(geom),
                      "properties": {"index": t + 1, "name": f"Suggested {t + 1}", "color": PALETTE[t % len(PALETTE)],
                                     "load": round(float(load[idx].sum()), 2), "cells": int(len(idx))}})
    loads = [f["properties"]["load"] for f in feats]
    return {"type": "FeatureCollection", "features": feats,
            "properties": {"k": k, "metric": metric, "hex_size_m": hex_size_m, "as_of": as_of.isoformat(),
                           "total": round(float(load.sum()), 2), "imbalance": imbalance(loads),
                           "cv_floor": round(cv_floor(load, k), 4),
                           "method": "recursive load bisection / region growing / balanced graph Voronoi on "
                                     "hexagon cells, refined by contiguity-preserving local search"}}


def _check_features(features) -> list[dict]:
    """The suggestion's features, each a GeoJSON Feature with a geometry and, optionally,
    properties (an object whose `name`, when given, is a non-empty string of at most 200
    characters); FilterError naming the offending field otherwise."""
    if not isinstance(features, list) or len(features) < 2:
        raise FilterError("features", "a suggestion has at least two territories")
    for i, f in enumerate(features):
        where = f"features[{i}]"
        if not isinstance(f, dict) or f.get("type") != "Feature":
            raise FilterError(where, "must be a GeoJSON Feature")
        if not isinstance(f.get("geometry"), dict):
            raise FilterError(f"{where}.geometry", "required: a GeoJSON Polygon or MultiPolygon")
        props = f.get("properties")
        if props is not None and not isinstance(props, dict):
            raise FilterError(f"{where}.properties", "must be an object or null")
        name = (props or {}).get("name")
        if name is not None and (not isinstance(name, str) or not 1 <= len(name.strip()) <= 200):
            raise FilterError(f"{where}.properties.name", "must be a non-empty string of at most 200 characters")
    return features


def accept(session: Session, scope: Scope, suggestion: dict) -> list[Territory]:
    """Replace the current territories by a suggestion in the caller's transaction.
    Suggested territories take over the existing territory they overlap most (keeping its
    id, name and users); extra existing territories are deleted, missing ones created.
    Membership is recomputed by the territory triggers; territory_history and an audit
    row ('realign') record the change."""
    scope.require("territory.write")
    from geo_crm.territories.geometry import to_multipolygon
    features = _check_features(suggestion.get("features"))
    existing = session.execute(select(Territory).order_by(Territory.id)).scalars().all()
    new_geoms = [to_multipolygon(f["geometry"], f"features[{i}].geometry") for i, f in enumerate(features)]
    pairs = []
    for i, g in enumerate(new_geoms):
        for t in existing:
            a = session.execute(text("SELECT ST_Area(ST_Intersection(geom, ST_GeomFromEWKT(:g))) FROM territory "
                                     "WHERE id = :id"), {"g": ewkt(g), "id": t.id}).scalar() or 0
            pairs.append((-a, i, t.id))
    pairs.sort()
    match: dict[int, int] = {}
    used: set[int] = set()
    for _, i, tid in pairs:
        if i not in match and tid not in used:
            match[i] = tid
            used.add(tid)
    by_id = {t.id: t for t in existing}
    out = []
    for t in existing:
        if t.id not in used:
            session.add(TerritoryHistory(territory_id=t.id, name=t.name, action="delete", geom=None,
                                         changed_by=scope.user_id, note="realigned away"))
            session.delete(t)
    session.flush()
    taken = {t.name for t in existing if t.id in used}
    for i, g in enumerate(new_geoms):
        if i in match:
            t = by_id[match[i]]
            t.geom = ewkt(g)
            t.source = "suggested"
            action = "update"
        else:
            name = (features[i].get("properties") or {}).get("name") or f"Suggested {i + 1}"
            while name in taken:
                name += " *"
            taken.add(name)
            t = Territory(name=name, geom=ewkt(g), source="suggested",
                          color=PALETTE[i % len(PALETTE)])
            session.add(t)
            action = "create"
        session.flush()
        session.refresh(t)
        session.add(TerritoryHistory(territory_id=t.id, name=t.name, action=action, geom=t.geom,
                                     changed_by=scope.user_id, note="accepted suggested alignment"))
        out.append(t)
    session.execute(text(
        "INSERT INTO audit_log (user_id, username, action, entity, entity_id, old, new, remote_addr) "
        "VALUES (nullif(current_setting('geo_crm.user_id', true), '')::int, coalesce(current_setting('geo_crm.username', true), ''), "
        "'realign', 'territory', 'alignment', CAST(:old AS jsonb), CAST(:new AS jsonb), "
        "nullif(current_setting('geo_crm.remote_addr', true), ''))"),
        {"old": json.dumps({"territory_ids": [t.id for t in existing]}),
         "new": json.dumps({"territory_ids": [t.id for t in out], "properties": suggestion.get("properties") or {}})})
    session.flush()
    return out


def _subgraph_lengths(xy, neighbours, units):
    """CSR matrix of edge lengths (metres) among `units` (local indices 0..len-1)."""
    from scipy.sparse import csr_matrix
    pos = {u: i for i, u in enumerate(units)}
    src, dst = [], []
    for i, u in enumerate(units):
        for v in neighbours[u]:
            j = pos.get(v)
            if j is not None:
                src.append(i)
                dst.append(j)
    src, dst = np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64)
    pts = xy[units]
    length = np.hypot(*(pts[src] - pts[dst]).T) + 1e-3 if len(src) else np.zeros(0)
    return csr_matrix((length, (src, dst)), shape=(len(units), len(units)))


_DIRECTIONS = tuple((float(np.cos(a)), float(np.sin(a))) for a in np.arange(8) * np.pi / 8)


def _filled(total: float, heavy: np.ndarray, k: int) -> np.ndarray:
    """The best K loads a split of `total` can reach when the cells `heavy` (the K heaviest,
    descending) each sit in some territory: water-filling (see `cv_floor`)."""
    top = np.concatenate([heavy[:k], np.zeros(max(0, k - len(heavy)))])
    for m in range(k):
        level = (total - top[:m].sum()) / (k - m)
        if top[m] <= level + 1e-12:
            return np.concatenate([top[:m], np.full(k - m, level)])
    return top


def _best_cut(xy, load, graph, units, k1, k, mean):
    """The two-way split of `units` (a connected set) into contiguous parts A (for k1
    territories) and B (k − k1) that leaves the least imbalance to its sub-splits. Candidates:
    for each sweep direction, the extreme units a, b along it and the additively weighted
    graph Voronoi {v : D(a,v) − D(b,v) ≤ c} — for every c both sides are shortest-path
    trees, hence contiguous — with c at each distinct value near the k1 : k − k1 load ratio.
    A cut is scored by the lowest sum of squared deviations from `mean` its two sides can
    still reach (`_filled`: heavy cells cannot be split); ties: earlier direction, then
    smaller load error. Returns (score, mask of A) or None when `units` is not connected."""
    from scipy.sparse.csgraph import dijkstra
    pts, w = xy[units], load[units]
    total = float(w.sum())
    target = total * k1 / k
    rank_heavy = np.argsort(-w, kind="stable")[:k]
    best = None
    for dx, dy in _DIRECTIONS:
        proj = pts[:, 0] * dx + pts[:, 1] * dy
        a, b = int(np.argmin(proj)), int(np.argmax(proj))
        if a == b:
            continue
        dist = dijkstra(graph, indices=[a, b])
        if not np.isfinite(dist).all():
            return None
        diff = dist[0] - dist[1]
        order = np.argsort(diff, kind="stable")
        cum = np.cumsum(w[order])
        ds = diff[order]
        last = np.r_[ds[1:] > ds[:-1] + 1e-6, True]          # cut only between distinct values
        cand = np.where(last[:-1])[0]                         # A and B both non-empty
        if not len(cand):
            continue
        err = np.abs(cum[cand] - target)
        cand = cand[np.argsort(err, kind="stable")[:_CUT_CANDIDATES]]
        pos = np.empty(len(units), dtype=np.int64)
        pos[order] = np.arange(len(units))
        hpos, hw = pos[rank_heavy], w[rank_heavy]
        for i in cand:
            in_a = hpos <= i
            la = _filled(float(cum[i]), hw[in_a], k1)
            lb = _filled(total - float(cum[i]), hw[~in_a], k - k1)
            score = float(((la - mean) ** 2).sum() + ((lb - mean) ** 2).sum())
            key = (score, abs(float(cum[i]) - target))
            if best is None or key < best[0]:
                mask = np.zeros(len(units), dtype=bool)
                mask[order[: i + 1]] = True
                best = (key, mask)
    return best


_CUT_CANDIDATES = 24


def bisect(xy: np.ndarray, load: np.ndarray, neighbours, k: int) -> np.ndarray:
    """Recursive load bisection: split the units into two contiguous halves for ⌊k/2⌋ and
    ⌈k/2⌉ territories (either side first when k is odd) by the best `_best_cut`, recurse
    into each half with its share of the territories. Heavy areas get several territories
    by construction. Works on the heaviest connected part of the cell graph; units outside
    it (islands) join the territory whose cell centroid is nearest. Returns a label 0..k-1
    per unit (deterministic)."""
    n = len(load)
    label = np.full(n, -1)
    comps = _components(neighbours)
    main = max(comps, key=lambda c: (load[c].sum(), len(c)))
    mean = float(load.sum()) / k
    stack = [(np.array(sorted(main)), k, 0)]
    while stack:
        units, kk, base = stack.pop()
        if kk == 1 or len(units) < 2:
            label[units] = base
            continue
        k1 = kk // 2
        graph = _subgraph_lengths(xy, neighbours, units)
        cuts = [c for c in (_best_cut(xy, load, graph, units, k1, kk, mean),
                            _best_cut(xy, load, graph, units, kk - k1, kk, mean) if kk % 2 else None) if c]
        if not cuts:
            label[units] = base
            continue
        (e1, m1), *rest = cuts
        if rest and rest[0][0] < e1:
            m1 = ~rest[0][1]
        stack.append((units[m1], k1, base))
        stack.append((units[~m1], kk - k1, base + k1))
    seeds_xy = {t: xy[label == t].mean(axis=0) for t in range(k) if (label == t).any()}
    for u in np.where(label < 0)[0]:
        label[u] = min(seeds_xy, key=lambda t: float(np.hypot(*(xy[u] - seeds_xy[t]))))
    return label


def _components(neighbours) -> list[list[int]]:
    """Connected components of the whole cell graph (every cell as one territory)."""
    return _pieces(np.zeros(len(neighbours), dtype=int), neighbours, 0)
