"""The dispatch problem and its answer as plain data, with the validation every solver relies on."""

from __future__ import annotations

import enum
import itertools
import math
from dataclasses import dataclass, field, fields

import numpy as np

from models.errors import FieldError, SizeError

TOP_TIER = 5
COST_SCALE = 1000  # the solvers count in integers: 1/1000 of a cost unit
DEFAULT_TIER = 1  # a technician whose tier nobody set, nor computed
DEFAULT_SPEED_KMH = 30.0  # travel speed when neither the request nor a duration matrix says
MAX_PRIORITY = 10_000
MAX_PAIRS = 50_000_000  # jobs × technicians in one request (10,000 × 3,000 takes 10 s and ~3 GB)
MAX_ROUTE_LOCATIONS = 15_000  # a city-scale day is split into regions (models/dispatch/regions.py)
# Upper bounds that keep every solver's integer arithmetic (costs × 1000, loads × 100, seconds) far
# from overflowing int64, whatever the request sends; no real dispatch day comes near them.
MAX_DURATION_MINUTES = 7 * 24 * 60
MAX_DEMAND = 1e9  # load units, for demand and vehicle_capacity
MAX_WEIGHT = 1e6  # each objective weight
MIN_SPEED_KMH, MAX_SPEED_KMH = 1.0, 1_000.0
MAX_TRAVEL = 1e6  # a distance-matrix value in km, or a duration-matrix value in minutes
MAX_TIME_LIMIT_S = 600.0
MAX_BREAKS = 32  # per technician, over all its shifts
MAX_BREAKS_A_SHIFT = 4  # planning is exact over the breaks of a day: its work grows with their cube
MAX_SHIFTS = 31  # per technician: a month of days
EARLIEST_TIME = 946_684_800.0  # 2000-01-01T00:00:00Z: windows and shifts are Unix seconds after it
LATEST_TIME = 7_258_118_400.0  # 2200-01-01T00:00:00Z


@dataclass(frozen=True)
class GeoPoint:
    lat: float
    lng: float


@dataclass(frozen=True)
class Window:
    """[start, end) in Unix seconds."""

    start: float
    end: float


@dataclass(frozen=True)
class Job:
    job_id: str
    location: GeoPoint
    required_skills: frozenset[str] = frozenset()
    duration_minutes: float = 0.0
    window: Window | None = None
    priority: int = 0
    demand: float = 0.0
    pinned_technician_id: str | None = None
    # The window bounds the start of the work (arrival, after any wait); with this, its end too.
    must_finish_in_window: bool = False
    # Re-planning: who holds the job in the plan being replaced (moving it costs Weights.reassignment).
    current_technician_id: str | None = None

    def latest_start(self) -> float:
        """When the work may start at the latest, Unix seconds (inf: no window)."""
        if self.window is None:
            return math.inf
        return self.window.end - (60.0 * self.duration_minutes if self.must_finish_in_window else 0.0)


@dataclass(frozen=True)
class Break:
    """A pause of `duration_minutes` that starts within `window` (Unix seconds): no work, no travel."""

    window: Window
    duration_minutes: float


@dataclass(frozen=True)
class Technician:
    technician_id: str
    location: GeoPoint
    skills: frozenset[str] = frozenset()
    tier: int = DEFAULT_TIER
    max_jobs: int = 0  # 0: no limit
    shift: Window | None = None
    vehicle_capacity: float = 0.0  # 0: no limit
    assigned_jobs: int = 0
    breaks: tuple[Break, ...] = ()  # in the order they are taken: by their windows' starts
    # Several working periods instead of `shift`; the solvers see one technician per shift
    # (models/dispatch/shifts.py), each with `shift_of` naming the technician it is a shift of.
    shifts: tuple[Window, ...] = ()
    shift_of: str | None = None
    # Where a ROUTE day ends when not back at `location` (home, when a re-plan sends where the
    # technician is now); later shifts start there too. Its place in the request's matrices: after
    # the jobs, in technician order (n_locations).
    end_location: GeoPoint | None = None

    @property
    def person(self) -> str:
        """The technician's id as the request gave it (pins and current technicians name it)."""
        return self.shift_of or self.technician_id


class Mode(enum.Enum):
    ASSIGN = "assign"
    ROUTE = "route"


class Capacity(enum.Enum):
    """What a technician's capacity counts in ASSIGN mode."""

    COUNT = "count"  # max_jobs
    SHIFT_MINUTES = "shift_minutes"  # max_jobs and the shift's minutes (travel from home + time on site)


@dataclass(frozen=True)
class Weights:
    """Objective weights, in cost units where one unit is one kilometre of travel by default."""

    travel_per_km: float = 1.0
    drop_penalty: float = 1000.0
    drop_penalty_per_priority: float = 1000.0
    tier: float = 0.5
    balance: float = 2.0
    # A job given to another technician than its current one: about 10 km of travel (20 minutes at
    # 30 km/h) at the default weight, so that a re-plan moves a job only for a clear saving.
    # benchmarks/replan.py measured 10 against 30 on the demo's day re-planned at 11:00: 3-5% fewer km
    # where the mornings matched, 1.8-7.9% of the jobs moved against 1.8-6.2%.
    reassignment: float = 10.0


WEIGHT_NAMES = tuple(f.name for f in fields(Weights))


def balance_cost(balance: float, new_jobs: np.ndarray, held: np.ndarray) -> float:
    """The balance term of a plan: a technician's k-th job costs balance × (k − 1), counting the jobs it
    already held (`held`) before the `new_jobs` of this plan."""
    return balance * float(np.sum(new_jobs * held + new_jobs * (new_jobs - 1) / 2))


@dataclass(frozen=True)
class Options:
    mode: Mode = Mode.ASSIGN
    time_limit_s: float = 5.0
    # Square matrices, flat in row-major order, over technicians', jobs' and then end locations
    # (n_locations), in request order.
    distance_km: np.ndarray | None = None
    duration_min: np.ndarray | None = None
    speed_kmh: float = DEFAULT_SPEED_KMH
    max_radius_km: float | None = None
    weights: Weights = field(default_factory=Weights)
    capacity: Capacity = Capacity.COUNT
    workers: int = 2  # solver threads where the algorithm can use them (CP-SAT)


@dataclass(frozen=True)
class Problem:
    jobs: tuple[Job, ...]
    technicians: tuple[Technician, ...]
    options: Options = field(default_factory=Options)


class Reason(enum.Enum):
    NO_QUALIFIED_TECHNICIAN = "no_qualified_technician"
    OUT_OF_RADIUS = "out_of_radius"
    NO_SHIFT_OVERLAP = "no_shift_overlap"
    DEMAND_EXCEEDS_CAPACITY = "demand_exceeds_capacity"
    PINNED_TECHNICIAN_MISSING = "pinned_technician_missing"
    PINNED_TECHNICIAN_UNQUALIFIED = "pinned_technician_unqualified"
    CAPACITY_EXHAUSTED = "capacity_exhausted"
    TOO_COSTLY = "too_costly"


class Status(enum.Enum):
    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    NO_SOLUTION = "no_solution"


@dataclass(frozen=True)
class Assignment:
    job_id: str
    technician_id: str
    sequence: int
    arrival: float | None  # Unix seconds
    travel_km: float
    reassigned: bool = False  # the job had a current technician, and this is another


@dataclass(frozen=True)
class ScheduledBreak:
    start: float  # Unix seconds
    duration_minutes: float


@dataclass(frozen=True)
class Route:
    """One technician's day (one shift) as a whole."""

    technician_id: str
    shift: Window | None
    job_ids: tuple[str, ...]
    breaks: tuple[ScheduledBreak, ...]
    start: float | None  # Unix seconds; None when nothing bounds the day
    end: float | None
    travel_km: float
    work_minutes: float
    wait_minutes: float


@dataclass(frozen=True)
class Unassigned:
    job_id: str
    reason: Reason
    detail: str


@dataclass(frozen=True)
class Plan:
    assignments: list[Assignment]
    unassigned: list[Unassigned]
    status: Status
    objective: float
    solve_ms: float
    travel_km: float
    bound: float | None = None  # a proven lower bound on the objective, when one is known
    routes: tuple[Route, ...] = ()  # filled in last (models/dispatch/day_routes.py)
    reassigned: int = 0  # jobs with a current technician given to another or left out


def validate(problem: Problem) -> None:
    """Raises FieldError naming the first invalid field."""
    _check_size(problem)
    _check_unique([j.job_id for j in problem.jobs], "jobs", "job_id")
    _check_unique([t.technician_id for t in problem.technicians], "technicians", "technician_id")
    for i, job in enumerate(problem.jobs):
        validate_job(job, f"jobs[{i}]")
    for i, tech in enumerate(problem.technicians):
        _validate_technician(tech, f"technicians[{i}]")
    validate_options(problem.options, n_locations(problem))


def n_locations(problem: Problem) -> int:
    """The places the request's matrices cover: technicians, jobs, then the technicians' end locations
    (of those that have one, in their order)."""
    ends = sum(t.end_location is not None for t in problem.technicians)
    return len(problem.technicians) + len(problem.jobs) + ends


def _check_size(problem: Problem) -> None:
    """A request too large to solve within this machine's memory is refused, not attempted: the
    solvers hold jobs × technicians arrays (and ROUTE a square matrix over every location)."""
    pairs = len(problem.jobs) * len(problem.technicians)
    if pairs > MAX_PAIRS:
        raise SizeError(
            "jobs", f"{pairs:,} job × technician pairs exceed {MAX_PAIRS:,}; split the request by area"
        )
    if problem.options.mode is Mode.ROUTE and n_locations(problem) > MAX_ROUTE_LOCATIONS:
        raise SizeError(
            "jobs",
            f"ROUTE mode plans at most {MAX_ROUTE_LOCATIONS:,} jobs, technicians and end locations together; "
            "split the request",
        )


def _check_unique(ids: list[str], collection: str, id_field: str) -> None:
    seen: dict[str, int] = {}
    for i, value in enumerate(ids):
        if not value:
            raise FieldError(f"{collection}[{i}].{id_field}", "must not be empty")
        if value in seen:
            raise FieldError(
                f"{collection}[{i}].{id_field}",
                f"duplicate id {value!r} (first at {collection}[{seen[value]}])",
            )
        seen[value] = i


def _validate_point(point: GeoPoint, path: str) -> None:
    if not (math.isfinite(point.lat) and -90.0 <= point.lat <= 90.0):
        raise FieldError(f"{path}.lat", f"latitude {point.lat} is outside [-90, 90]")
    if not (math.isfinite(point.lng) and -180.0 <= point.lng <= 180.0):
        raise FieldError(f"{path}.lng", f"longitude {point.lng} is outside [-180, 180]")


def validate_window(window: Window | None, path: str) -> None:
    if window is None:
        return
    if not (math.isfinite(window.start) and math.isfinite(window.end)):
        raise FieldError(path, "start and end must both be set")
    if window.end < window.start:
        raise FieldError(path, "end is before start")
    for name, value in (("start", window.start), ("end", window.end)):
        if not EARLIEST_TIME <= value <= LATEST_TIME:
            raise FieldError(f"{path}.{name}", "must be between 2000-01-01 and 2200-01-01")


def _non_negative(value: float, path: str, most: float = math.inf) -> None:
    if not (math.isfinite(value) and 0 <= value <= most):
        bound = f" and <= {most:g}" if math.isfinite(most) else ""
        raise FieldError(path, f"must be a finite number >= 0{bound}, got {value}")


def validate_job(job: Job, path: str) -> None:
    _validate_point(job.location, f"{path}.location")
    _non_negative(job.duration_minutes, f"{path}.duration_minutes", MAX_DURATION_MINUTES)
    validate_window(job.window, f"{path}.time_window")
    if not 0 <= job.priority <= MAX_PRIORITY:
        raise FieldError(f"{path}.priority", f"must be in [0, {MAX_PRIORITY}], got {job.priority}")
    _non_negative(job.demand, f"{path}.demand", MAX_DEMAND)
    if any(not s for s in job.required_skills):
        raise FieldError(f"{path}.required_skills", "skills must not be empty strings")
    for name in ("pinned_technician_id", "current_technician_id"):
        value = getattr(job, name)
        if value is not None and not value:
            raise FieldError(f"{path}.{name}", "must not be empty when set")


def _validate_technician(tech: Technician, path: str) -> None:
    _validate_point(tech.location, f"{path}.location")
    if tech.end_location is not None:
        _validate_point(tech.end_location, f"{path}.end_location")
    if not 1 <= tech.tier <= TOP_TIER:
        raise FieldError(f"{path}.tier", f"must be in [1, {TOP_TIER}], got {tech.tier}")
    if tech.max_jobs < 0:
        raise FieldError(f"{path}.max_jobs", f"must be >= 0, got {tech.max_jobs}")
    if tech.assigned_jobs < 0:
        raise FieldError(f"{path}.assigned_jobs", f"must be >= 0, got {tech.assigned_jobs}")
    validate_window(tech.shift, f"{path}.shift")
    _non_negative(tech.vehicle_capacity, f"{path}.vehicle_capacity", MAX_DEMAND)
    if any(not s for s in tech.skills):
        raise FieldError(f"{path}.skills", "skills must not be empty strings")
    _validate_shifts(tech, path)
    _validate_breaks(tech, path)


def _validate_shifts(tech: Technician, path: str) -> None:
    if not tech.shifts:
        return
    if tech.shift is not None:
        raise FieldError(f"{path}.shifts", "set shift or shifts, not both")
    if len(tech.shifts) > MAX_SHIFTS:
        raise FieldError(f"{path}.shifts", f"at most {MAX_SHIFTS} shifts, got {len(tech.shifts)}")
    for i, window in enumerate(tech.shifts):
        validate_window(window, f"{path}.shifts[{i}]")
    order = sorted(range(len(tech.shifts)), key=lambda i: tech.shifts[i].start)
    for a, b in itertools.pairwise(order):
        if tech.shifts[b].start < tech.shifts[a].end:
            raise FieldError(f"{path}.shifts[{b}]", f"overlaps shifts[{a}]")


def holds(shift: Window, pause: Break) -> bool:
    """Whether the break belongs to the shift: it can start within it (a window opened before the shift
    starts is fine: a re-planned day starts late) and end before the shift does."""
    return shift.start <= pause.window.end and pause.window.end + 60.0 * pause.duration_minutes <= shift.end


def _validate_breaks(tech: Technician, path: str) -> None:
    if len(tech.breaks) > MAX_BREAKS:
        raise FieldError(f"{path}.breaks", f"at most {MAX_BREAKS} breaks, got {len(tech.breaks)}")
    shifts = tech.shifts or ((tech.shift,) if tech.shift else ())
    for i, pause in enumerate(tech.breaks):
        where = f"{path}.breaks[{i}]"
        validate_window(pause.window, f"{where}.window")
        if not (math.isfinite(pause.duration_minutes) and 0 < pause.duration_minutes <= MAX_DURATION_MINUTES):
            raise FieldError(
                f"{where}.duration_minutes",
                f"must be > 0 and <= {MAX_DURATION_MINUTES}, got {pause.duration_minutes}",
            )
        if shifts and not any(holds(s, pause) for s in shifts):
            raise FieldError(
                f"{where}.window",
                "must open within one of the technician's shifts, late enough in it for the whole break",
            )
    for shift in shifts or (None,):
        held = [i for i, b in enumerate(tech.breaks) if shift is None or holds(shift, b)]
        _check_takeable(tech, held, shift, path)
        if len(held) > MAX_BREAKS_A_SHIFT:
            raise FieldError(
                f"{path}.breaks", f"at most {MAX_BREAKS_A_SHIFT} breaks in one shift, got {len(held)}"
            )


def _check_takeable(tech: Technician, held: list[int], shift: Window | None, path: str) -> None:
    """A day without jobs must have room for all of a shift's breaks (`held`: their indices), taken in
    the order of their windows' starts, each as early as it may start."""
    clock = shift.start if shift is not None else -math.inf
    for i in sorted(held, key=lambda i: (tech.breaks[i].window.start, tech.breaks[i].window.end, i)):
        pause = tech.breaks[i]
        clock = max(clock, pause.window.start)
        if clock > pause.window.end:
            raise FieldError(
                f"{path}.breaks[{i}].window", "cannot start within it: the breaks before it end later"
            )
        clock += 60.0 * pause.duration_minutes


def validate_options(options: Options, places: int) -> None:
    if not (math.isfinite(options.time_limit_s) and 0 < options.time_limit_s <= MAX_TIME_LIMIT_S):
        raise FieldError("options.time_limit_ms", f"must be > 0 and <= {MAX_TIME_LIMIT_S * 1000:.0f}")
    if not (math.isfinite(options.speed_kmh) and MIN_SPEED_KMH <= options.speed_kmh <= MAX_SPEED_KMH):
        raise FieldError(
            "options.speed_kmh",
            f"must be between {MIN_SPEED_KMH:g} and {MAX_SPEED_KMH:g}, got {options.speed_kmh}",
        )
    if options.max_radius_km is not None:
        _non_negative(options.max_radius_km, "options.max_radius_km")
    for name, matrix in (("distance_matrix", options.distance_km), ("duration_matrix", options.duration_min)):
        if matrix is None:
            continue
        if matrix.ndim != 1 or matrix.size != places * places:
            raise FieldError(
                f"options.{name}.values",
                f"needs (technicians + jobs + end locations)^2 = {places * places} values, got {matrix.size}",
            )
        if not np.all(np.isfinite(matrix)) or np.any(matrix < 0) or np.any(matrix > MAX_TRAVEL):
            raise FieldError(f"options.{name}.values", f"values must be finite, >= 0 and <= {MAX_TRAVEL:g}")
    for name in WEIGHT_NAMES:
        _non_negative(getattr(options.weights, name), f"options.weights.{name}", MAX_WEIGHT)
