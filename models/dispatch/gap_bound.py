"""The linear relaxation of the generalized assignment problem: a lower bound, the technicians' prices
and a fractional plan, from HiGHS (through scipy).

Letting a job be split between technicians (and partly left out) makes the problem a linear program;
its optimum bounds every plan from below (the balance term only adds), its basic solution splits at
most one job per binding capacity (all others come out whole: a near-complete first plan), and its
dual prices say what a second of each technician's shift and a slot of its job count are worth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sparse
from scipy.optimize import linprog

from models.dispatch.gap_instance import UNLIMITED, GapInstance


@dataclass(frozen=True)
class Relaxation:
    bound: float  # a proven lower bound on the objective
    share: np.ndarray  # jobs × technicians: how much of each job the relaxation gives each technician
    per_second: np.ndarray  # technicians: the price of a second of shift
    per_job: np.ndarray  # technicians: the price of a job slot

    def priced(self, instance: GapInstance) -> np.ndarray:
        """Jobs × technicians: each pair's cost with the technician's time priced in."""
        return instance.cost + self.per_second[None, :] * instance.seconds + self.per_job[None, :]


def relax(instance: GapInstance, seconds: float) -> Relaxation | None:
    """The relaxation's optimum, or None if HiGHS did not reach it within `seconds`."""
    n_jobs, n_tech = instance.cost.shape
    job, tech = np.nonzero(instance.allowed)
    open_jobs = np.flatnonzero(instance.allowed.any(axis=1))
    n_pairs, n_open = job.size, open_jobs.size
    if n_pairs == 0:
        return None
    # Columns: the pairs, then "left out" per open job. Rows: each open job once in all; shifts; counts.
    row_of_job = np.full(n_jobs, -1)
    row_of_job[open_jobs] = np.arange(n_open)
    columns = np.arange(n_pairs + n_open)
    once = sparse.csr_matrix(
        (np.ones(n_pairs + n_open), (np.concatenate([row_of_job[job], np.arange(n_open)]), columns)),
        shape=(n_open, n_pairs + n_open),
    )
    limited = np.flatnonzero(instance.shift < UNLIMITED)
    counted = np.flatnonzero(instance.count < n_jobs)
    shifts = _per_technician(
        tech, instance.seconds[job, tech].astype(float), limited, n_tech, n_pairs + n_open
    )
    counts = _per_technician(tech, np.ones(n_pairs), counted, n_tech, n_pairs + n_open)
    result = linprog(
        np.concatenate([instance.cost[job, tech], instance.penalty[open_jobs]]),
        A_ub=sparse.vstack([shifts, counts]),
        b_ub=np.concatenate([instance.shift[limited], instance.count[counted]]).astype(float),
        A_eq=once,
        b_eq=np.ones(n_open),
        bounds=(0, 1),
        method="highs-ds",
        options={"time_limit": max(0.01, seconds)},
    )
    if result.status != 0:
        return None
    share = np.zeros((n_jobs, n_tech))
    share[job, tech] = result.x[:n_pairs]
    per_second, per_job = np.zeros(n_tech), np.zeros(n_tech)
    # HiGHS's marginals of <= rows are <= 0 when minimising: the price is their negation.
    per_second[limited] = -result.ineqlin.marginals[: limited.size]
    per_job[counted] = -result.ineqlin.marginals[limited.size :]
    constant = float(instance.penalty[~instance.allowed.any(axis=1)].sum())
    return Relaxation(float(result.fun) + constant, share, per_second, per_job)


def _per_technician(
    tech: np.ndarray, values: np.ndarray, rows: np.ndarray, n_tech: int, width: int
) -> sparse.csr_matrix:
    """One row per technician in `rows`: `values` of its pairs."""
    row_of_tech = np.full(n_tech, -1)
    row_of_tech[rows] = np.arange(rows.size)
    keep = np.flatnonzero(row_of_tech[tech] >= 0)
    return sparse.csr_matrix((values[keep], (row_of_tech[tech[keep]], keep)), shape=(rows.size, width))
