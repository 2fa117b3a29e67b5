"""Plans for the generalized assignment problem: a greedy start, CP-SAT over a group of technicians,
and a large-neighbourhood search that re-solves one small group after another.

Re-solving every job of a few technicians (and the jobs left out that they could take) with CP-SAT
is a neighbourhood that simple moves cannot reach: it trades many jobs among the group at once.
Groups are technicians that compete for the same jobs (they are among those jobs' cheapest at the
relaxation's prices).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from models.dispatch.gap_instance import GapInstance
from models.dispatch.problem import COST_SCALE

RELATED = 5  # technicians are related when both are among a job's RELATED cheapest
GROUP_SIZE = 3  # technicians re-solved together (measured on OR-Library's D type: 3 beat 2, 4, 5, 6)
GROUP_WORK = 0.1  # CP-SAT's deterministic time for one group (about 0.1 s here)
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
    work: float | None = None,
) -> GroupResult | None:
    """The best re-assignment of `jobs` among `techs` (or out), everything else kept, from the current
    plan as a hint, within `seconds` and (if given) `work`, CP-SAT's deterministic time; None if CP-SAT
    found nothing in time."""
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
    if work is not None:
        solver.parameters.max_deterministic_time = work
    solver.parameters.num_workers = max(1, workers)
    solver.parameters.random_seed = seed
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    plan = tech_of_job.copy()
    plan[jobs] = -1
    taken = np.array([solver.boolean_value(v) for v in x], dtype=bool)
    plan[pair_job[taken]] = pair_tech[taken]
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


def _balance(model: cp_model.CpModel, chosen: list, before: int) -> cp_model.LinearExpr:
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
    """Re-solve groups of related technicians until `deadline`, keeping each better plan.

    Each round draws one group per worker, groups that share no technician and no job, and solves
    them side by side (CP-SAT releases the GIL while it solves) within a deterministic work limit;
    the rounds' plans depend on the input alone, so two calls agree unless the time limit stops them
    after different rounds."""
    rng = np.random.default_rng(seed)
    related = _relatedness(instance, priced)
    busy = np.flatnonzero(instance.allowed.any(axis=0))
    if busy.size < 2:
        return tech_of_job
    floor = 0.05 * (1.0 + float(related[np.ix_(busy, busy)].mean()))  # every technician may be drawn
    plan, value = tech_of_job.copy(), instance.objective(tech_of_job)
    size = min(GROUP_SIZE, busy.size)
    last_round = 0.0  # a round is not begun unless one as long as the last still fits before the deadline
    with ThreadPoolExecutor(max(1, workers)) as pool:
        while (started := time.perf_counter()) + last_round < deadline - 0.01:
            rounds = _draw(instance, plan, rng, related, busy, floor, size, max(1, workers))
            limit = deadline - time.perf_counter()
            solving = [
                pool.submit(solve_group, instance, plan, group, jobs, limit, 1, int(rng.integers(1 << 30)),
                            GROUP_WORK)
                for group, jobs in rounds
            ]  # fmt: skip
            for (_, jobs), done in zip(rounds, solving, strict=True):
                result = done.result()
                if result is None:
                    continue
                candidate = plan.copy()
                candidate[jobs] = result.tech_of_job[jobs]
                candidate_value = instance.objective(candidate)
                if candidate_value < value - 1e-9:
                    plan, value = candidate, candidate_value
            last_round = time.perf_counter() - started
    return plan


def _draw(
    instance: GapInstance,
    plan: np.ndarray,
    rng: np.random.Generator,
    related: np.ndarray,
    busy: np.ndarray,
    floor: float,
    size: int,
    count: int,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Up to `count` groups that share no technician: (technicians, their jobs and the jobs left out
    that they could take, at most MAX_LEFT_OUT of those)."""
    free = np.ones(instance.cost.shape[1], dtype=bool)
    taken = np.zeros(instance.cost.shape[0], dtype=bool)
    rounds = []
    for _ in range(count):
        candidates = busy[free[busy]]
        if candidates.size == 0:
            break
        group = _pick_group(rng, related, candidates, min(size, candidates.size), floor)
        out = np.flatnonzero((plan < 0) & ~taken & instance.allowed[:, group].any(axis=1))
        if out.size > MAX_LEFT_OUT:
            out = rng.choice(out, MAX_LEFT_OUT, replace=False)
        jobs = np.concatenate([np.flatnonzero(np.isin(plan, group)), out])
        free[group] = False
        taken[out] = True
        if jobs.size:
            rounds.append((group, jobs))
    return rounds


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
