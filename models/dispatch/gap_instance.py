"""The generalized assignment problem behind ASSIGN mode with shift minutes, as plain arrays.

Jobs × technicians: what a pair costs and how many seconds of the shift it takes; per technician its
shift in seconds, its job count limit and the jobs it already holds (for the balance term); per job
the penalty for leaving it out. A pair that is not allowed costs infinity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.dispatch.problem import balance_cost

SECONDS = 60  # work is counted in whole seconds
UNLIMITED = np.iinfo(np.int64).max // 4  # a shift without an end


@dataclass(frozen=True)
class GapInstance:
    cost: np.ndarray  # jobs × technicians, inf where the pair is not allowed
    seconds: np.ndarray  # jobs × technicians, int64
    shift: np.ndarray  # technicians, int64 seconds (UNLIMITED: no end)
    count: np.ndarray  # technicians, int64: most jobs it may take
    before: np.ndarray  # technicians, int64: jobs it already holds
    penalty: np.ndarray  # jobs: the cost of leaving each out
    balance: float  # the k-th new job of a technician costs balance * (k - 1 + before)

    @property
    def allowed(self) -> np.ndarray:
        return np.isfinite(self.cost)

    def objective(self, tech_of_job: np.ndarray) -> float:
        """Pair costs, penalties of the jobs left out (-1), and the balance term."""
        done = np.flatnonzero(tech_of_job >= 0)
        load = np.bincount(tech_of_job[done], minlength=self.cost.shape[1])
        return (
            float(self.cost[done, tech_of_job[done]].sum())
            + float(self.penalty[tech_of_job < 0].sum())
            + balance_cost(self.balance, load, self.before)
        )

    def fits(self, tech_of_job: np.ndarray) -> bool:
        """Every placed job on an allowed technician, within every shift and job count."""
        done = np.flatnonzero(tech_of_job >= 0)
        n_tech = self.cost.shape[1]
        used = np.bincount(tech_of_job[done], self.seconds[done, tech_of_job[done]], minlength=n_tech)
        load = np.bincount(tech_of_job[done], minlength=n_tech)
        return bool(
            np.isfinite(self.cost[done, tech_of_job[done]]).all()
            and (used <= self.shift).all()
            and (load <= self.count).all()
        )
