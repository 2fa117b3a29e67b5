"""`python -m training experiments`: each experiment's arms compared on what their users did, with the
touchpoint review (training/funnels.py) beside it, written as experiments.json and experiments.html.

Per arm: users, exposures (answers shown), impression events under them, and the clicks, carts, orders
and revenue attributed to them (training/experiment_log.py); CTR (clicks per exposure), conversion
(orders per exposure) and revenue per exposure, each a ratio of per-user sums with its delta-method 95%
interval (training/experiment_stats.py); every arm's lift over the control (the first arm); the
sample-ratio check; and the decision on the experiment's primary metric.

Which inference applies is stated per experiment: `fixed_horizon` when the file sets `horizon_days`
(no decision before that many days and `min_users_per_arm` users in every arm, then one fixed-sample
test), else `always_valid` (the mixture sequential test: the decision may be read at any time, as often
as wished). Several arms against one control share the level (Bonferroni).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.experiments import Experiment, Experiments
from training import experiment_stats as st
from training import funnels
from training.engines import DuckDB
from training.experiment_log import Period, load, user_arms
from training.report import DAY_SECONDS, Page

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


def _arm_summary(rows: pd.DataFrame, name: str) -> tuple[dict[str, Any], dict[str, st.Estimate]]:
    estimates = {m: st.ratio(rows[num].to_numpy(), rows[den].to_numpy()) for m, (num, den) in METRICS.items()}
    summary: dict[str, Any] = {"name": name, "users": len(rows)}
    summary.update({c: float(rows[c].sum()) if c == "revenue" else int(rows[c].sum()) for c in COUNTS})
    for metric, estimate in estimates.items():
        low, high = estimate.interval()
        summary[metric] = {"value": _num(estimate.value), "low": _num(low), "high": _num(high)}
    return summary, estimates


def _comparison(
    treatment: st.Estimate, control: st.Estimate, users: int, planned: int, alpha: float
) -> dict[str, Any]:
    diff = st.difference(treatment, control)
    lift = st.relative_lift(treatment, control)
    tau2 = st.mixing_variance(diff, users, planned)
    sequence = st.confidence_sequence(diff, tau2, alpha)
    return {
        "difference": _num(diff.value),
        "difference_interval": [_num(v) for v in diff.interval()],
        "relative_lift": _num(lift.value),
        "relative_lift_interval": [_num(v) for v in lift.interval()],
        "p_value_fixed": _num(st.fixed_p_value(diff)),
        "p_value_always_valid": _num(st.always_valid_p_value(diff, tau2)),
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
    srm_p = st.sample_ratio([s["users"] for s in summaries], [arm.weight for arm in experiment.arms])
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


def analyse(
    events: Path,
    experiments: Experiments,
    items: pd.DataFrame | None,
    period: Period,
    config: AnalysisConfig,
    engine: DuckDB,
) -> dict[str, Any]:
    """The whole report as a JSON-ready dict: experiments and the touchpoint review."""
    report, bad_exposures = load(engine, events, period)
    users = user_arms(engine, config.window_hours * 3600)
    days = _days_running(users, period)
    review = funnels.review(engine, items, config.window_hours * 3600, config.alpha)
    return {
        "period": {"since": period.since, "until": period.until},
        "events": {"read": report.rows_read, "kept": report.rows_kept, "dropped": report.dropped},
        "exposures_unreadable": bad_exposures,
        "attribution": "recommendation_id; else the same user and item within "
        f"{config.window_hours:g} h after an answer that showed it",
        "experiments": [compare(e, users, days.get(e.name, 0.0), config) for e in experiments.experiments],
        "touchpoints": review,
    }


def _days_running(users: pd.DataFrame, period: Period) -> dict[str, float]:
    """Days from each experiment's first exposure to the end of the period (or its last exposure)."""
    if users.empty:
        return {}
    first = users.groupby("experiment")["first_exposure"].min()
    end = period.until if period.until is not None else float(users["first_exposure"].max())
    return {str(name): float(max(end - start, 0.0) / DAY_SECONDS) for name, start in first.items()}


def write(result: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "experiments.json", out / "experiments.html"
    json_path.write_text(json.dumps(result, indent=2, default=_json_default) + "\n")
    html_path.write_text(render(result))
    return json_path, html_path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON: {type(value).__name__}")


def render(result: dict[str, Any]) -> str:
    page = Page("Experiments and touchpoints")
    page.text(
        f"Events kept {result['events']['kept']:,} of {result['events']['read']:,}. Attribution: "
        f"{result['attribution']}. Rates are per exposure (an answer shown), per-user delta-method 95% "
        "intervals: the user is the unit of randomisation."
    )
    for experiment in result["experiments"]:
        _experiment_section(page, experiment)
    funnels.render(page, result["touchpoints"])
    return page.render()


def _experiment_section(page: Page, experiment: dict[str, Any]) -> None:
    decision = experiment["decision"]
    page.heading(f"Experiment {experiment['name']} on {experiment['touchpoint']}")
    winner = f" — winner: {decision['winner']}" if decision["winner"] else ""
    inference = (
        "always valid (mixture sequential test: read it as often as you like)"
        if decision["inference"] == "always_valid"
        else "fixed horizon (no decision before the horizon)"
    )
    page.text(
        f"Decision on {decision['metric']}: {decision['status']}{winner} ({decision['reason']}). "
        f"Inference: {inference}; {decision['days_running']} days running. Sample ratio p = "
        f"{_fmt(experiment['srm']['p_value'])}, users {experiment['srm']['users']}."
    )
    rows = []
    for arm in experiment["arms"]:
        row = {k: arm[k] for k in ("name", "users", *COUNTS)}
        for metric in METRICS:
            m = arm[metric]
            row[metric] = f"{_fmt(m['value'])} [{_fmt(m['low'])}, {_fmt(m['high'])}]"
        lift = arm.get("lift", {}).get(decision["metric"])
        row["lift"] = "control" if lift is None else _lift_text(lift)
        rows.append(row)
    page.table(pd.DataFrame(rows))
    page.chart(f"experiment_{experiment['name']}", lambda f: _draw_arms(f, experiment), size=(8, 3.2))


def _lift_text(lift: dict[str, Any]) -> str:
    low, high = lift["relative_lift_interval"]
    return (
        f"{_fmt(lift['relative_lift'], percent=True)} [{_fmt(low, percent=True)}, {_fmt(high, percent=True)}]"
        f", always-valid p {_fmt(lift['p_value_always_valid'])}"
    )


def _fmt(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.1%}" if percent else f"{value:.4g}"


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


def _draw_arms(figure: Any, experiment: dict[str, Any]) -> None:
    metric = experiment["decision"]["metric"]
    axes = figure.subplots()
    arms = experiment["arms"]
    values = np.array([_or_nan(a[metric]["value"]) for a in arms])
    lows = np.array([_or_nan(a[metric]["low"]) for a in arms])
    highs = np.array([_or_nan(a[metric]["high"]) for a in arms])
    positions = np.arange(len(arms))
    axes.barh(positions, values, color="#7fa7d4", xerr=[values - lows, highs - values], capsize=4)
    axes.set_yticks(positions, [a["name"] for a in arms])
    axes.invert_yaxis()
    axes.set_xlabel(f"{metric} (95% interval)")
