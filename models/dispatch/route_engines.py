"""Which ROUTE searches a day gets (`engines`), by its structure: PyVRP's hybrid genetic search, OR-Tools'
searches, OR-Tools polished by PyVRP, and for a re-plan one search from the plan it replaces and one
from scratch. models/dispatch/route.py runs them."""

from __future__ import annotations

from dataclasses import dataclass

from ortools.constraint_solver import routing_enums_pb2

from models.dispatch import route_hgs
from models.dispatch.eligibility import Eligibility
from models.dispatch.problem import Problem
from models.dispatch.route_plan import replanning

_Strategy = routing_enums_pb2.FirstSolutionStrategy
_Metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic
# A search: its first solution and the metaheuristic that improves it. Savings + tabu search had the
# lowest mean gap on Solomon (3.7% alone at 10 s) and local cheapest insertion + guided local search
# complements it best. Savings fails where technicians differ in the jobs they may take (the demo's day
# with lunch breaks at 5 s: 230 and 232 of 300 placed against 259 and 247 for local cheapest insertion),
# so the search that always runs is local cheapest insertion, and there its partner is parallel cheapest
# insertion + guided local search (objective 72,385, 73,349 and 72,695 on three seeds, where local
# cheapest insertion had 71,442, 73,274 and 78,526: each wins some).
Search = tuple[int, int]
SEARCHES: tuple[Search, Search, Search] = (
    (_Strategy.LOCAL_CHEAPEST_INSERTION, _Metaheuristic.GUIDED_LOCAL_SEARCH),
    (_Strategy.SAVINGS, _Metaheuristic.TABU_SEARCH),
    (_Strategy.PARALLEL_CHEAPEST_INSERTION, _Metaheuristic.GUIDED_LOCAL_SEARCH),
)


@dataclass(frozen=True)
class Hgs:
    """PyVRP's hybrid genetic search with this seed (models/dispatch/route_hgs.py)."""

    seed: int


@dataclass(frozen=True)
class Polished:
    """OR-Tools' first search for POLISH_SHARE of the time, then PyVRP's search from its plan (this
    seed) for the rest; the better of the two plans."""

    seed: int


@dataclass(frozen=True)
class Fresh:
    """A re-plan's search from scratch (the reassignment costs still in its objective) instead of from
    the plan being replaced."""

    engine: Search | Hgs | Polished


HGS_SEEDS = (Hgs(1), Hgs(2))
Engine = Search | Hgs | Polished | Fresh
# Where technicians differ in the jobs they may take (the demo's 300-job day: 80 technicians, 59 skill
# sets, 3-6 jobs each), PyVRP from scratch leaves out more jobs than OR-Tools (250 against 259 placed in
# 5 s), whose plan stops improving within 3 s; PyVRP started from OR-Tools' plan keeps its jobs and
# shortens its routes. As the portfolio runs them at 5 s, on three seeds: objective 70,253 and 72,201
# against 71,396 and 73,248 for OR-Tools alone, the same plan on the third (where OR-Tools needed the
# whole 5 s); at 0.7 of the time the third lost 4 jobs too.
POLISH_SHARE = 0.5


def engines(problem: Problem, elig: Eligibility) -> list[Engine]:
    """The searches a day gets, best first. A day PyVRP's model can hold whose technicians are
    interchangeable (Solomon, Homberger) goes to its hybrid genetic search, ahead of both OR-Tools
    searches at every size measured: two seeds side by side, or one beside OR-Tools' guided local search
    when the balance term counts (HGS does not model it, and the portfolio's objective does). Where
    technicians differ in the jobs they may take, guided local search places more jobs than HGS from
    scratch: it runs beside `Polished` (the same search for POLISH_SHARE of the time, then HGS from its
    plan). Days PyVRP's model does not fit (breaks, or more profiles than its budget) get two OR-Tools
    searches."""
    # PyVRP has no breaks: a day with any goes to OR-Tools, whose time dimension plans them.
    pausing = any(t.breaks for t in problem.technicians)
    pyvrp_fits = not pausing and hgs_available() and route_hgs.profiles(problem, elig) is not None
    alike = interchangeable(problem, elig)
    chosen: list[Search | Hgs | Polished]
    if pyvrp_fits and alike:
        chosen = [HGS_SEEDS[0], SEARCHES[0]] if problem.options.weights.balance else list(HGS_SEEDS)
    elif pyvrp_fits:
        chosen = [SEARCHES[0], Polished(HGS_SEEDS[0].seed)]
    elif alike:
        chosen = [SEARCHES[0], SEARCHES[1]]
    else:
        chosen = [SEARCHES[0], SEARCHES[2]]
    if not replanning(problem):
        return list(chosen)
    # A re-plan's first search starts from the plan it replaces, its second from scratch: a start can
    # trap the search (the demo's lunch day re-planned, seed 3: 184 jobs placed from the plan, 189 from
    # scratch, the fresh plan better by its objective, reassignments counted; parallel cheapest
    # insertion from scratch came within 0.1% of local cheapest insertion from scratch). Where PyVRP
    # polishes, it polishes the warm search too (the demo day without lunch re-planned, the same
    # mornings: 1,512 km instead of 1,541 on seed 3, the same plans on seeds 1 and 2).
    warm = chosen[1] if isinstance(chosen[1], Polished) else chosen[0]
    return [warm, Fresh(chosen[1])]


def interchangeable(problem: Problem, elig: Eligibility) -> bool:
    """Whether any technician may take any job that someone may take, time, loads and job counts aside:
    no pin, radius or skill that some technician lacks keeps one from it. Job counts are PyVRP's own
    load dimension: on the 2,000-job city day with every technician qualified and 3-6 jobs each, region
    by region at 60 s, PyVRP placed 1,768 (objective 375,881) and OR-Tools 1,766 (378,168)."""
    open_jobs = [j for j in range(len(problem.jobs)) if j not in elig.reasons]
    return bool(elig.placeable[open_jobs].all()) and not route_hgs.lacked_skills(problem, open_jobs)


def hgs_available() -> bool:
    try:
        import pyvrp  # noqa: F401
    except ImportError:
        return False
    return True
