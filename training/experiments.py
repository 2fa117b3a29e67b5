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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.experiment_stats import COUNTS, METRICS, AnalysisConfig, compare
from models.experiments import Experiments
from training import funnels
from training.engines import DuckDB
from training.experiment_log import Period, load, user_arms
from training.report import DAY_SECONDS, Page


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
