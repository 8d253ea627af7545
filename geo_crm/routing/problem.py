"""Plain data model of a rich vehicle routing problem and its solution.

Independent of the database, Flask and of any solver library.

Units and conventions
---------------------
* Times are integer seconds on one common clock (e.g. seconds since the
  planning day's midnight, or since an epoch - the solver does not care, as
  long as every time field and the duration matrix use the same unit).
* Distances are integer metres.  Nothing in the solver depends on the unit
  being metres: the VRPLIB benchmark uses scaled Euclidean units instead.
* ``demand`` and ``capacity`` are integers in one common unit (parcels, kg...).
  Demand is *delivered*: a vehicle leaves its depot with the load of all the
  stops on its route and drops ``demand`` at each stop.
* Matrices: ``distance_m`` and ``duration_s`` are square integer matrices over
  the nodes ``[depots..., stops...]`` in that order, so stop ``i`` is node
  ``len(depots) + i``.  ``matrix[a, b]`` is the travel from ``a`` to ``b``
  (they need not be symmetric).  An entry ``>= UNREACHABLE`` in either matrix
  means "no path" (e.g. pgRouting found no route).
* ``lon``/``lat`` are only carried for display and validation; the solver uses
  the matrices alone.  (Planar benchmark coordinates go in the same fields.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Hashable, Literal

import numpy as np

#: Matrix entries at or above this value mean "unreachable".
UNREACHABLE: int = 10**12
#: "No limit" value for time windows, shift ends and durations.
NO_LIMIT: int = 2**62

UnassignedReason = Literal["capacity", "time_window", "out_of_reach", "not_selected"]
UNASSIGNED_REASONS: tuple[str, ...] = ("capacity", "time_window", "out_of_reach", "not_selected")


class ProblemError(ValueError):
    """The problem description is invalid (raised by :meth:`Problem.validate`)."""


@dataclass
class Depot:
    id: Hashable
    lon: float
    lat: float
    #: Opening hours of the depot: routes start at or after ``tw_start_s`` and
    #: must be back by ``tw_end_s``.
    tw_start_s: int = 0
    tw_end_s: int = NO_LIMIT


@dataclass
class VehicleType:
    #: Index into ``Problem.depots`` where these vehicles start and end.
    depot: int
    #: Number of identical vehicles available.
    count: int
    #: Capacity in demand units.
    capacity: int
    #: Earliest departure from the depot / latest return to the depot.
    shift_start_s: int = 0
    shift_end_s: int = NO_LIMIT
    #: Maximum route duration (return time - departure time, waiting included).
    max_duration_s: int = NO_LIMIT
    name: str = ""
    #: Opaque ids of the individual vehicles (optional; ``len == count`` if set).
    vehicle_ids: list[Hashable] = field(default_factory=list)
    #: Cost model: fixed cost per used vehicle, per distance unit, per second.
    fixed_cost: int = 0
    unit_distance_cost: int = 1
    unit_duration_cost: int = 0


@dataclass
class Stop:
    #: Opaque id (customer / order id) reported back in the solution.
    id: Hashable
    lon: float
    lat: float
    demand: int = 0
    service_s: int = 0
    #: Service must *start* within [tw_start_s, tw_end_s]; arriving early waits.
    tw_start_s: int = 0
    tw_end_s: int = NO_LIMIT
    #: Required stops must be served; optional ones are served only if their
    #: ``prize`` outweighs the extra routing cost.
    required: bool = True
    prize: int = 0


@dataclass
class Problem:
    depots: list[Depot]
    vehicle_types: list[VehicleType]
    stops: list[Stop]
    #: (D+S) x (D+S) integer matrices, see module docstring.
    distance_m: np.ndarray
    duration_s: np.ndarray
    name: str = ""
    #: Free-form metadata (e.g. VRPLIB scaling) - never used by the solver.
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_nodes(self) -> int:
        return len(self.depots) + len(self.stops)

    def node_of_stop(self, stop_index: int) -> int:
        return len(self.depots) + stop_index

    def reachable(self, a: int, b: int) -> bool:
        """Whether node ``b`` can be reached from node ``a`` (node indices)."""
        return int(self.distance_m[a, b]) < UNREACHABLE and int(self.duration_s[a, b]) < UNREACHABLE

    def validate(self) -> None:
        """Raise :class:`ProblemError` with a clear message if the problem is malformed."""
        if not self.depots:
            raise ProblemError("problem has no depots")
        if not self.vehicle_types or sum(max(vt.count, 0) for vt in self.vehicle_types) == 0:
            raise ProblemError("problem has zero vehicles")

        for i, d in enumerate(self.depots):
            _check_coords(f"depot {i} ({d.id!r})", d.lon, d.lat)
            if d.tw_end_s < d.tw_start_s:
                raise ProblemError(
                    f"depot {i} ({d.id!r}): tw_end_s {d.tw_end_s} < tw_start_s {d.tw_start_s}"
                )

        for i, vt in enumerate(self.vehicle_types):
            label = f"vehicle type {i} ({vt.name!r})"
            if not 0 <= vt.depot < len(self.depots):
                raise ProblemError(f"{label}: depot index {vt.depot} out of range")
            if vt.count < 0:
                raise ProblemError(f"{label}: negative count {vt.count}")
            if vt.capacity < 0:
                raise ProblemError(f"{label}: negative capacity {vt.capacity}")
            if vt.shift_end_s < vt.shift_start_s:
                raise ProblemError(
                    f"{label}: shift_end_s {vt.shift_end_s} < shift_start_s {vt.shift_start_s}"
                )
            if vt.max_duration_s < 0:
                raise ProblemError(f"{label}: negative max_duration_s {vt.max_duration_s}")
            if vt.vehicle_ids and len(vt.vehicle_ids) != vt.count:
                raise ProblemError(
                    f"{label}: {len(vt.vehicle_ids)} vehicle_ids for count {vt.count}"
                )
            if min(vt.fixed_cost, vt.unit_distance_cost, vt.unit_duration_cost) < 0:
                raise ProblemError(f"{label}: negative cost coefficient")

        seen: set = set()
        for i, s in enumerate(self.stops):
            label = f"stop {i} ({s.id!r})"
            _check_coords(label, s.lon, s.lat)
            if s.id in seen:
                raise ProblemError(f"{label}: duplicate stop id")
            seen.add(s.id)
            if s.demand < 0:
                raise ProblemError(f"{label}: negative demand {s.demand}")
            if s.service_s < 0:
                raise ProblemError(f"{label}: negative service_s {s.service_s}")
            if s.tw_end_s < s.tw_start_s:
                raise ProblemError(f"{label}: tw_end_s {s.tw_end_s} < tw_start_s {s.tw_start_s}")
            if s.prize < 0:
                raise ProblemError(f"{label}: negative prize {s.prize}")

        n = self.num_nodes
        for name in ("distance_m", "duration_s"):
            m = getattr(self, name)
            if not isinstance(m, np.ndarray):
                raise ProblemError(f"{name} must be a numpy array, got {type(m).__name__}")
            if m.ndim != 2 or m.shape[0] != m.shape[1]:
                raise ProblemError(f"{name} must be square, got shape {m.shape}")
            if m.shape[0] != n:
                raise ProblemError(
                    f"{name} is {m.shape[0]}x{m.shape[1]} but there are {n} nodes "
                    f"({len(self.depots)} depots + {len(self.stops)} stops)"
                )
            if not np.issubdtype(m.dtype, np.integer):
                raise ProblemError(f"{name} must be an integer matrix, got dtype {m.dtype}")
            if n and m.min() < 0:
                raise ProblemError(f"{name} has negative entries")


def _check_coords(label: str, lon: float, lat: float) -> None:
    try:
        ok = math.isfinite(float(lon)) and math.isfinite(float(lat))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ProblemError(f"{label}: coordinates must be finite numbers, got ({lon!r}, {lat!r})")


# --------------------------------------------------------------------------- results


@dataclass
class Visit:
    stop_id: Hashable
    #: Index into ``Problem.stops``.
    stop_index: int
    arrival_s: int
    start_service_s: int
    departure_s: int
    #: Load still on board after serving this stop.
    load_after: int


@dataclass
class Route:
    vehicle_type: int
    #: Vehicle number within its type (0-based); see ``vehicle_id`` for the opaque id.
    vehicle_no: int
    depot: int
    visits: list[Visit]
    distance_m: int
    duration_s: int
    #: Departure from / return to the depot.
    start_s: int
    end_s: int
    #: Total demand delivered on this route (= load when leaving the depot).
    load: int
    vehicle_id: Hashable | None = None
    cost: int = 0


@dataclass
class Unassigned:
    stop_id: Hashable
    stop_index: int
    reason: UnassignedReason
    detail: str = ""


@dataclass
class Solution:
    routes: list[Route]
    unassigned: list[Unassigned]
    #: Routing cost: sum over routes of fixed + distance + duration costs.
    cost: int
    feasible: bool
    runtime_s: float
    #: Prizes of optional stops that are not served.
    uncollected_prize: int = 0
    #: Human-readable constraint violations (empty when feasible).
    violations: list[str] = field(default_factory=list)
    iterations: int = 0

    @property
    def objective(self) -> int:
        """What the solver minimises: routing cost + uncollected prizes."""
        return self.cost + self.uncollected_prize

    @property
    def distance_m(self) -> int:
        return sum(r.distance_m for r in self.routes)
