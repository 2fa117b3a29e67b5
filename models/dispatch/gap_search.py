"""Plans for the generalized assignment problem: a greedy start, CP-SAT over a group of technicians,
and a large-neighbourhood search that re-solves one small group after another.

Re-solving every job of a few technicians (and the jobs left out that they could take) exactly is
a neighbourhood that simple moves cannot reach: it trades many jobs among the group at once. Groups
are technicians that compete for the same jobs (they are among those jobs' cheapest at the Lagrangian
prices), and the group grows while CP-SAT still proves its optimum quickly.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from models.dispatch.gap_instance import GapInstance

COST_SCALE = 1000  # CP-SAT costs are integers: 1/1000 of a cost unit
RELATED = 5  # technicians are related when both are among a job's RELATED cheapest
FIRST_GROUP = 3  # technicians re-solved together at first
SMALLEST_GROUP = 3
GROUP_SECONDS = 0.1  # time for one group's model
MAX_LEFT_OUT = 60  # jobs left out that one group may take


def regret_start(instance: GapInstance, priced: np.ndarray, placed: np.ndarray | None = None) -> np.ndarray:
    """The jobs not yet `placed` (-1) in order of regret (how much more they pay, at `priced` costs,
    for their second choice), each to its cheapest technician that still has room (Martello and Toth's
    greedy); -1 where none has."""
    n_jobs, n_tech = priced.shape
    cost = np.where(instance.allowed, priced, np.inf)
    tech_of_job = np.full(n_jobs, -1) if placed is None else placed.copy()
    done = np.flatnonzero(tech_of_job >= 0)
    used = np.bincount(tech_of_job[done], instance.seconds[done, tech_of_job[done]], minlength=n_tech)
    used = used.astype(np.int64)
    load = np.bincount(tech_of_job[done], minlength=n_tech)
    waiting = np.flatnonzero(instance.allowed.any(axis=1) & (tech_of_job < 0))
    while waiting.size:
        room = (used[None, :] + instance.seconds[waiting] <= instance.shift[None, :]) & (
            load < instance.count
        )[None, :]
        options = np.where(room, cost[waiting], np.inf)
        two = (
            np.partition(options, 1, axis=1)[:, :2]
            if n_tech > 1
            else np.hstack([options, np.full((waiting.size, 1), np.inf)])
        )
        first, second = two.min(axis=1), two.max(axis=1)
        with np.errstate(invalid="ignore"):
            regret = np.where(np.isfinite(second), second - first, np.inf)
        regret[~np.isfinite(first)] = -np.inf  # nowhere left: decided last, and left out
        pick = int(np.argmax(regret))
        j = int(waiting[pick])
        waiting = np.delete(waiting, pick)
        if np.isfinite(first[pick]):
            t = int(np.argmin(options[pick]))
            tech_of_job[j] = t
            used[t] += instance.seconds[j, t]
            load[t] += 1
    return tech_of_job


@dataclass(frozen=True)
class GroupResult:
    tech_of_job: np.ndarray  # the whole plan, with the group's jobs re-assigned
    proven: bool  # CP-SAT proved the group's part optimal
    bound: float | None  # a lower bound on the whole objective, when the group is every technician


def solve_group(
    instance: GapInstance,
    tech_of_job: np.ndarray,
    techs: np.ndarray,
    jobs: np.ndarray,
    seconds: float,
    workers: int,
    seed: int = 0,
) -> GroupResult | None:
    """The best re-assignment of `jobs` among `techs` (or out), everything else kept, from the current
    plan as a hint; None if CP-SAT found nothing in time."""
    allowed = instance.allowed[np.ix_(jobs, techs)]
    pair_job, pair_slot = np.nonzero(allowed)
    pair_tech = techs[pair_slot]
    pair_job = jobs[pair_job]
    model = cp_model.CpModel()
    x = [model.new_bool_var("") for _ in range(pair_job.size)]
    for members in _groups(pair_job, jobs):
        model.add_at_most_one(x[p] for p in members)
    seconds_of_pair = instance.seconds[pair_job, pair_tech]
    extra = []
    for slot, members in enumerate(_groups(pair_slot, np.arange(techs.size))):
        if not members:
            continue
        t = int(techs[slot])
        chosen = [x[p] for p in members]
        model.add(cp_model.LinearExpr.sum(chosen) <= int(instance.count[t]))
        model.add(
            cp_model.LinearExpr.weighted_sum(chosen, seconds_of_pair[members].tolist())
            <= int(instance.shift[t])
        )
        if instance.balance > 0:
            extra.append(_balance(model, chosen, int(instance.before[t])))
    # Leaving a job out costs its penalty: each chosen pair costs its cost less the penalty it saves.
    gain = np.rint((instance.cost[pair_job, pair_tech] - instance.penalty[pair_job]) * COST_SCALE)
    objective = cp_model.LinearExpr.weighted_sum(x, gain.astype(np.int64).tolist())
    if extra:
        objective += round(instance.balance * COST_SCALE / 2) * cp_model.LinearExpr.sum(extra)
    model.minimize(objective)
    for p in range(pair_job.size):
        model.add_hint(x[p], bool(tech_of_job[pair_job[p]] == pair_tech[p]))

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.01, seconds)
    solver.parameters.num_workers = max(1, workers)
    solver.parameters.random_seed = seed
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    plan = tech_of_job.copy()
    plan[jobs] = -1
    chosen = np.array([solver.boolean_value(v) for v in x], dtype=bool)
    plan[pair_job[chosen]] = pair_tech[chosen]
    whole = techs.size == instance.cost.shape[1] and jobs.size == int(instance.allowed.any(axis=1).sum())
    bound = None
    if whole:
        bound = float(instance.penalty.sum()) + solver.best_objective_bound / COST_SCALE
    return GroupResult(plan, status == cp_model.OPTIMAL, bound)


def _groups(keys: np.ndarray, values: np.ndarray) -> list[list[int]]:
    """For each value, the positions in `keys` that hold it."""
    where = {int(v): i for i, v in enumerate(values)}
    out: list[list[int]] = [[] for _ in values]
    for p, k in enumerate(keys.tolist()):
        out[where[k]].append(p)
    return out


def _balance(model: cp_model.CpModel, chosen: list, before: int):
    """n (n - 1) + 2 n before, for n the technician's jobs: twice the balance term's sum."""
    n = model.new_int_var(0, len(chosen), "")
    model.add(n == cp_model.LinearExpr.sum(chosen))
    square = model.new_int_var(0, len(chosen) ** 2, "")
    model.add_multiplication_equality(square, [n, n])
    return square - n + 2 * before * n


def neighbourhood_search(
    instance: GapInstance,
    priced: np.ndarray,
    tech_of_job: np.ndarray,
    deadline: float,
    workers: int,
    seed: int = 0,
) -> np.ndarray:
    """Re-solve groups of related technicians until `deadline`, keeping each better plan; one search
    thread per worker (CP-SAT releases the GIL while it solves), on groups that never overlap."""
    search = _Search(instance, priced, tech_of_job)
    if search.busy.size < 2:
        return tech_of_job
    threads = [
        threading.Thread(target=search.run, args=(deadline, np.random.default_rng([seed, k])))
        for k in range(max(1, workers))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return search.plan


class _Search:
    """The shared plan, and which technicians and left-out jobs a thread's group holds right now."""

    def __init__(self, instance: GapInstance, priced: np.ndarray, tech_of_job: np.ndarray) -> None:
        self.instance = instance
        self.related = _relatedness(instance, priced)
        self.busy = np.flatnonzero(instance.allowed.any(axis=0))
        # Every technician may be drawn, the related ones far more often.
        self.floor = 0.05 * (1.0 + float(self.related[np.ix_(self.busy, self.busy)].mean()))
        self.plan = tech_of_job.copy()
        self.value = instance.objective(self.plan)
        self.lock = threading.Lock()
        self.held_techs = np.zeros(instance.cost.shape[1], dtype=bool)
        self.held_jobs = np.zeros(instance.cost.shape[0], dtype=bool)

    def run(self, deadline: float, rng: np.random.Generator) -> None:
        size = min(FIRST_GROUP, self.busy.size)
        while time.perf_counter() < deadline - 0.01:
            with self.lock:
                group, jobs, plan = self._take(rng, size)
            if jobs.size == 0:
                self._give_back(group, jobs)
                continue
            started = time.perf_counter()
            limit = min(GROUP_SECONDS, deadline - started)
            seed = int(rng.integers(1 << 30))
            result = solve_group(self.instance, plan, group, jobs, limit, 1, seed)
            took = time.perf_counter() - started
            with self.lock:
                if result is not None:
                    candidate = self.plan.copy()
                    candidate[jobs] = result.tech_of_job[jobs]
                    value = self.instance.objective(candidate)
                    if value < self.value - 1e-9:
                        self.plan, self.value = candidate, value
                self._give_back(group, jobs)
            # Grow the groups while they are proven quickly; shrink them when they are not.
            if result is not None and result.proven and took < GROUP_SECONDS / 4:
                size = min(size + 1, self.busy.size)
            elif result is None or not result.proven:
                size = max(SMALLEST_GROUP, size - 1)

    def _take(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A group of free technicians, their jobs and the free left-out jobs they could take."""
        free = self.busy[~self.held_techs[self.busy]]
        group = _pick_group(rng, self.related, free, min(size, free.size), self.floor) if free.size else free
        out = np.flatnonzero((self.plan < 0) & ~self.held_jobs & self.instance.allowed[:, group].any(axis=1))
        if out.size > MAX_LEFT_OUT:
            out = rng.choice(out, MAX_LEFT_OUT, replace=False)
        jobs = np.concatenate([np.flatnonzero(np.isin(self.plan, group)), out])
        self.held_techs[group] = True
        self.held_jobs[out] = True
        return group, jobs, self.plan.copy()

    def _give_back(self, group: np.ndarray, jobs: np.ndarray) -> None:
        self.held_techs[group] = False
        self.held_jobs[jobs] = False


def _relatedness(instance: GapInstance, priced: np.ndarray) -> np.ndarray:
    """Technicians × technicians: how many jobs have both among their RELATED cheapest at the prices."""
    n_jobs, n_tech = priced.shape
    k = min(RELATED, n_tech)
    cost = np.where(instance.allowed, priced, np.inf)
    top = np.argpartition(cost, k - 1, axis=1)[:, :k]
    member = np.zeros((n_jobs, n_tech), dtype=np.float32)
    np.put_along_axis(member, top, 1.0, axis=1)
    member *= np.isfinite(cost)
    return member.T @ member


def _pick_group(
    rng: np.random.Generator, related: np.ndarray, busy: np.ndarray, size: int, floor: float
) -> np.ndarray:
    """A random technician and size - 1 others drawn by how much they compete with the group so far."""
    group = [int(rng.choice(busy))]
    weight = related[group[0], busy].astype(float) + floor
    weight[busy == group[0]] = 0.0
    while len(group) < size and weight.sum() > 0:
        t = int(rng.choice(busy.size, p=weight / weight.sum()))
        group.append(int(busy[t]))
        weight[t] = 0.0
        weight += np.where(weight > 0, related[busy[t], busy], 0.0)
    return np.array(group)
