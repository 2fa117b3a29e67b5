"""The statistics of an experiment whose unit of randomisation is the user.

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

import numpy as np
from scipy import stats

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
