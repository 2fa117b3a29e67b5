"""The statistics of an experiment whose unit of randomisation is the user, and the comparison of its
arms (compare, decide) from per-user rows: shared by the offline analysis (training/experiments.py) and the
service's console (service/console/), so both name the same winner.

A user who comes back sees the same arm and behaves alike on every visit, so impressions are not
independent: a test that counts each impression as a trial understates the variance and names false
winners far more often than its level (tests/training/test_experiments_stats.py measures it). Every
rate here is a ratio of per-user sums, sum(numerator) / sum(denominator) over the users, and its variance
comes from the delta method: the rate's influence per user, (num_i - R den_i) / mean(den), has the
rate's sampling variance over n users as var / n.

Peeking: the decision may be read every day, so a fixed-sample p-value (valid at one planned look)
would, read daily, stop on noise. The always-valid test is the normal-mixture sequential probability
ratio test (Johari et al. 2017, "Peeking at A/B tests"; the confidence sequence is Howard et al. 2021's
normal-mixture boundary) on the delta-method estimate: its likelihood ratio is a test martingale, so
by Ville's inequality the chance it ever crosses 1/alpha under no difference is at most alpha however
often it is looked at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from models.experiments import Experiment

Z95 = float(stats.norm.ppf(0.975))


@dataclass(frozen=True)
class Estimate:
    """A rate or a difference of rates with its standard error."""

    value: float
    se: float

    def interval(self, z: float = Z95) -> tuple[float, float]:
        return self.value - z * self.se, self.value + z * self.se


def influence(num: np.ndarray, den: np.ndarray) -> tuple[float, np.ndarray]:
    """The ratio sum(num) / sum(den) over users and each user's influence on it (delta method)."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    mean_den = den.mean() if den.size else 0.0
    if mean_den <= 0:
        return math.nan, np.full(num.shape, math.nan)
    rate = float(num.sum() / den.sum())
    return rate, (num - rate * den) / mean_den


def ratio(num: np.ndarray, den: np.ndarray) -> Estimate:
    """A per-user ratio metric (e.g. clicks per impression) and its delta-method standard error."""
    rate, psi = influence(num, den)
    if psi.size < 2 or math.isnan(rate):
        return Estimate(rate, math.nan)
    return Estimate(rate, float(np.sqrt(psi.var(ddof=1) / psi.size)))


def difference(treatment: Estimate, control: Estimate) -> Estimate:
    """treatment - control for independent groups of users (arms)."""
    return Estimate(treatment.value - control.value, math.hypot(treatment.se, control.se))


def relative_lift(treatment: Estimate, control: Estimate) -> Estimate:
    """treatment / control - 1 and its delta-method standard error."""
    if not control.value:
        return Estimate(math.nan, math.nan)
    lift = treatment.value / control.value - 1
    se = math.sqrt(
        (treatment.se / control.value) ** 2 + (treatment.value * control.se / control.value**2) ** 2
    )
    return Estimate(lift, se)


def paired_difference(num_a: np.ndarray, den_a: np.ndarray, num_b: np.ndarray, den_b: np.ndarray) -> Estimate:
    """rate_a - rate_b when the same users contribute to both (a slot against the rest of the slots):
    the difference of influences per user carries their covariance."""
    rate_a, psi_a = influence(num_a, den_a)
    rate_b, psi_b = influence(num_b, den_b)
    psi = psi_a - psi_b
    if psi.size < 2 or math.isnan(rate_a) or math.isnan(rate_b):
        return Estimate(math.nan, math.nan)
    return Estimate(rate_a - rate_b, float(np.sqrt(psi.var(ddof=1) / psi.size)))


def fixed_p_value(estimate: Estimate) -> float:
    """Two-sided p-value of a difference at one planned look."""
    if not estimate.se > 0:
        return math.nan
    return float(2 * stats.norm.sf(abs(estimate.value) / estimate.se))


def mixing_variance(estimate: Estimate, users: float, planned_users: float) -> float:
    """The mixture's prior variance of the effect, tau^2: the difference's variance at the planned number
    of users (the variance falls as 1/users), where the boundary is about tightest (Howard et al. 2021,
    section 3.5)."""
    return estimate.se**2 * users / max(planned_users, 1.0)


def always_valid_p_value(estimate: Estimate, tau2: float) -> float:
    """1 / the mixture likelihood ratio of "a difference" against "none", capped at 1."""
    v = estimate.se**2
    if not v > 0 or not tau2 > 0:
        return math.nan
    log_ratio = 0.5 * math.log(v / (v + tau2)) + estimate.value**2 * tau2 / (2 * v * (v + tau2))
    return float(min(1.0, math.exp(-log_ratio)))


def confidence_sequence(estimate: Estimate, tau2: float, alpha: float) -> tuple[float, float]:
    """The differences the always-valid test does not reject at level alpha: an interval that covers
    the true difference at every look at once with probability 1 - alpha."""
    v = estimate.se**2
    if not v > 0 or not tau2 > 0:
        return math.nan, math.nan
    half = math.sqrt(v * (v + tau2) / tau2 * (2 * math.log(1 / alpha) + math.log((v + tau2) / v)))
    return estimate.value - half, estimate.value + half


def sample_ratio(users: list[int], weights: list[float]) -> float:
    """The p-value of the users per arm against the arms' weights (chi-square goodness of fit); a tiny
    one means the split is broken (assignment, logging or a bot), so no comparison can be trusted."""
    observed = np.asarray(users, dtype=np.float64)
    if observed.sum() == 0 or len(observed) < 2:
        return math.nan
    shares = np.asarray(weights, dtype=np.float64) / float(np.sum(weights))
    return float(stats.chisquare(observed, observed.sum() * shares).pvalue)


# Each metric: (numerator, denominator) of per-user sums.
METRICS = {
    "ctr": ("clicks", "exposures"),
    "conversion": ("orders", "exposures"),
    "revenue_per_impression": ("revenue", "exposures"),
}
COUNTS = ("exposures", "impression_events", "clicks", "carts", "orders", "revenue")


@dataclass(frozen=True)
class AnalysisConfig:
    alpha: float = 0.05  # the chance of naming a winner when the arms do not differ
    srm_alpha: float = 0.001  # a sample-ratio p-value below this stops the comparison
    window_hours: float = 24.0  # attribution of events without a recommendation id
    planned_users_per_arm: int = 1000  # the sequential test's tuning when the file sets no min_users_per_arm


def _arm_summary(rows: pd.DataFrame, name: str) -> tuple[dict[str, Any], dict[str, Estimate]]:
    estimates = {m: ratio(rows[num].to_numpy(), rows[den].to_numpy()) for m, (num, den) in METRICS.items()}
    summary: dict[str, Any] = {"name": name, "users": len(rows)}
    summary.update({c: float(rows[c].sum()) if c == "revenue" else int(rows[c].sum()) for c in COUNTS})
    for metric, estimate in estimates.items():
        low, high = estimate.interval()
        summary[metric] = {"value": _num(estimate.value), "low": _num(low), "high": _num(high)}
    return summary, estimates


def _comparison(
    treatment: Estimate, control: Estimate, users: int, planned: int, alpha: float
) -> dict[str, Any]:
    diff = difference(treatment, control)
    lift = relative_lift(treatment, control)
    tau2 = mixing_variance(diff, users, planned)
    sequence = confidence_sequence(diff, tau2, alpha)
    return {
        "difference": _num(diff.value),
        "difference_interval": [_num(v) for v in diff.interval()],
        "relative_lift": _num(lift.value),
        "relative_lift_interval": [_num(v) for v in lift.interval()],
        "p_value_fixed": _num(fixed_p_value(diff)),
        "p_value_always_valid": _num(always_valid_p_value(diff, tau2)),
        "confidence_sequence": [_num(v) for v in sequence],
    }


def compare(experiment: Experiment, users: pd.DataFrame, days_running: float, config: AnalysisConfig) -> dict:
    """One experiment's result from its per-user rows (experiment_log.user_arms' columns)."""
    rows = users[users["experiment"] == experiment.name]
    names = [arm.name for arm in experiment.arms]
    summaries, estimates = zip(*(_arm_summary(rows[rows["arm"] == n], n) for n in names), strict=True)
    planned = experiment.min_users_per_arm or config.planned_users_per_arm
    alpha = config.alpha / (len(names) - 1)
    for summary, arm_estimates in zip(summaries[1:], estimates[1:], strict=True):
        users_in_pair = summary["users"] + summaries[0]["users"]
        summary["lift"] = {
            m: _comparison(arm_estimates[m], estimates[0][m], users_in_pair, 2 * planned, alpha)
            for m in METRICS
        }
    srm_p = sample_ratio([s["users"] for s in summaries], [arm.weight for arm in experiment.arms])
    mismatch = bool(srm_p < config.srm_alpha)
    srm = {
        "p_value": _num(srm_p),
        "users": [s["users"] for s in summaries],
        "expected_shares": [arm.weight / sum(a.weight for a in experiment.arms) for arm in experiment.arms],
        "mismatch": mismatch,
    }
    several = int((rows.groupby("user_id")["arm"].nunique() > 1).sum())
    return {
        "name": experiment.name,
        "touchpoint": experiment.touchpoint,
        "arms": list(summaries),
        "srm": srm,
        "users_in_several_arms": several,
        "decision": decide(experiment, list(summaries), mismatch, days_running, config),
    }


def decide(
    experiment: Experiment, arms: list[dict], mismatch: bool, days_running: float, config: AnalysisConfig
) -> dict[str, Any]:
    metric = experiment.primary_metric
    fixed = experiment.horizon_days is not None
    alpha = config.alpha / (len(arms) - 1)
    decision: dict[str, Any] = {
        "metric": metric,
        "inference": "fixed_horizon" if fixed else "always_valid",
        "alpha_per_comparison": alpha,
        "days_running": round(days_running, 2),
        "winner": None,
    }
    if mismatch:
        return {
            **decision,
            "status": "sample_ratio_mismatch",
            "reason": "users per arm do not match the weights",
        }
    if fixed:
        enough = min(a["users"] for a in arms) >= (experiment.min_users_per_arm or 0)
        decision["horizon_reached"] = bool(days_running >= (experiment.horizon_days or 0) and enough)
        if not decision["horizon_reached"]:
            return {**decision, "status": "no_difference_yet", "reason": "the fixed horizon is not reached"}
    key = "p_value_fixed" if fixed else "p_value_always_valid"
    tested = [(a["name"], a["lift"][metric]) for a in arms[1:]]
    significant = [(n, c["difference"]) for n, c in tested if c[key] is not None and c[key] < alpha]
    better = [(n, d) for n, d in significant if d > 0]
    if better:
        winner = max(better, key=lambda pair: pair[1])[0]
        return {**decision, "status": "winner", "winner": winner, "reason": f"{winner} beats the control"}
    if tested and len(significant) == len(tested):
        return {
            **decision,
            "status": "winner",
            "winner": arms[0]["name"],
            "reason": "the control beats every arm",
        }
    return {**decision, "status": "no_difference_yet", "reason": "no arm differs from the control yet"}


def _num(value: float) -> float | None:
    """A number for JSON: NaN (a rate of no exposures) as null."""
    return None if value is None or not math.isfinite(value) else float(value)
