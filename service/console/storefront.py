"""The storefront's pages, from the event log, the exposures, the experiments file and the audience set:
/experiments, /touchpoints, /funnels, /audiences."""

from __future__ import annotations

import itertools
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from scipy import stats

from models import experiments as experiment_file
from models.experiment_stats import METRICS, AnalysisConfig, compare
from service.console import charts, data
from service.console.view import Section, cell, interval, table
from service.logs import hash_id

STEPS = ("impressions", "clicks", "carts", "orders")
MIN_ITEM_IMPRESSIONS = 30  # an item shown fewer times has a CTR too noisy to rank
RANKED = 10
TAGS_DRAWN = 8


def experiments(db: duckdb.DuckDBPyConnection, path: str) -> list[Section]:
    if not path:
        return [
            Section(
                "No experiments",
                "The service runs without --experiments.",
                (charts.no_data("no experiments file"),),
                (table(pd.DataFrame({"experiment": []})),),
            )
        ]
    users = data.user_arms(db)
    per_hour = data.exposures_per_hour(db)
    newest = float(db.execute("SELECT coalesce(max(ts), 0) FROM shown").fetchone()[0])  # type: ignore[index]
    return [_experiment(e, users, per_hour, newest) for e in experiment_file.load(Path(path)).experiments]


def _experiment(
    experiment: experiment_file.Experiment, users: pd.DataFrame, per_hour: pd.DataFrame, newest: float
) -> Section:
    mine = users[users["experiment"] == experiment.name]
    days = (newest - float(mine["first_exposure"].min())) / 86400 if len(mine) else 0.0
    result = compare(experiment, users, days, AnalysisConfig())
    rows = []
    for arm in result["arms"]:
        row = {"arm": arm["name"], "users": arm["users"], "exposures": arm["exposures"]}
        row.update({m: interval(arm[m]["value"], arm[m]["low"], arm[m]["high"]) for m in METRICS})
        lift = arm.get("lift", {}).get(experiment.primary_metric)
        row["lift"] = (
            "control" if lift is None else interval(lift["relative_lift"], *lift["relative_lift_interval"])
        )
        row["always-valid p"] = "–" if lift is None else cell(lift["p_value_always_valid"])
        rows.append(row)
    decision, srm = result["decision"], result["srm"]
    metric = experiment.primary_metric
    arms = result["arms"]
    chart = charts.intervals(
        [a["name"] for a in arms],
        [_nan(a[metric]["value"]) for a in arms],
        [_nan(a[metric]["low"]) for a in arms],
        [_nan(a[metric]["high"]) for a in arms],
        f"{metric} per exposure (95% interval, per user)",
    )
    hours = per_hour[per_hour["experiment"] == experiment.name]
    series = {str(arm): (g["hour"], g["exposures"]) for arm, g in hours.groupby("arm")}
    over_time = charts.lines(series, "exposures per hour") if series else charts.no_data("no exposures yet")
    srm_text = (
        "MISMATCH: users per arm do not match the weights" if srm["mismatch"] else "matches the weights"
    )
    text = (
        f"On {experiment.touchpoint}. Decision on {metric}: {decision['status']}"
        f"{' — winner ' + decision['winner'] if decision['winner'] else ''} ({decision['reason']}; "
        f"{decision['inference'].replace('_', ' ')}, {decision['days_running']} days). Sample ratio "
        f"p = {cell(srm['p_value'])}: {srm_text}."
    )
    return Section(
        f"Experiment {experiment.name}",
        text,
        (chart, over_time),
        (table(pd.DataFrame(rows)),),
        warning=srm["mismatch"],
    )


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value


def _rates(frame: pd.DataFrame) -> pd.DataFrame:
    shown = frame["impressions"].where(frame["impressions"] > 0)
    return frame.assign(ctr=frame["clicks"] / shown, conversion=frame["orders"] / shown)


def touchpoints(db: duckdb.DuckDBPyConnection) -> list[Section]:
    daily = _rates(data.slot_counts(db, "touchpoint, day"))
    ctr = {str(t): (g["day"], g["ctr"]) for t, g in daily.groupby("touchpoint")}
    conversion = {str(t): (g["day"], g["conversion"]) for t, g in daily.groupby("touchpoint")}
    empty = charts.no_data("no impressions in the log")
    items = _rates(data.slot_counts(db, "touchpoint, item_id"))
    items = items[items["impressions"] >= MIN_ITEM_IMPRESSIONS].sort_values(
        ["touchpoint", "ctr"], ascending=[True, False]
    )
    overall = _rates(data.slot_counts(db, "touchpoint")).set_index("touchpoint")["ctr"]
    items["ctr_high"] = np.array(
        [
            stats.binomtest(int(c), int(n)).proportion_ci(method="wilson").high
            for c, n in zip(items["clicks"], items["impressions"], strict=True)
        ],
        dtype=float,
    )
    items["underperforming"] = items["ctr_high"] < items["touchpoint"].map(overall)
    best = items.groupby("touchpoint").head(RANKED)
    worst = items[items["underperforming"]]
    columns = ["touchpoint", "item_id", "impressions", "clicks", "orders", "ctr", "conversion"]
    return [
        Section(
            "CTR and conversion per day",
            "Actions credited to the impression of their recommendation id.",
            (
                charts.lines(ctr, "CTR") if ctr else empty,
                charts.lines(conversion, "conversion") if conversion else empty,
            ),
            (table(daily, ["touchpoint", "day", "impressions", "clicks", "orders", "ctr", "conversion"]),),
        ),
        Section(
            f"Content ranked by CTR (items shown at least {MIN_ITEM_IMPRESSIONS} times)",
            f"The best {RANKED} items per touchpoint.",
            (),
            (table(best, columns),),
        ),
        Section(
            "Underperformers",
            "Items whose CTR's 95% Wilson interval lies wholly below their touchpoint's CTR.",
            (
                charts.bars(
                    (worst["touchpoint"] + " / " + worst["item_id"]).tolist(),
                    worst["ctr"].tolist(),
                    "CTR",
                    [True] * len(worst),
                )
                if len(worst)
                else charts.no_data("no underperformer"),
            ),
            (table(worst, [*columns, "ctr_high"]),),
            warning=bool(len(worst)),
        ),
    ]


def funnels(db: duckdb.DuckDBPyConnection, categories: pd.DataFrame) -> list[Section]:
    sections = []
    for by in ("touchpoint", "touchpoint, scene", "touchpoint, category"):
        frame = data.slot_counts(db, by, categories)
        for before, after in itertools.pairwise(STEPS):
            frame[f"{before} → {after}"] = frame[after] / frame[before].where(frame[before] > 0)
        chart = _funnel_chart(frame, by.split(", ")) if by == "touchpoint" else None
        sections.append(
            Section(
                f"Funnel per {by}",
                "impression → click → cart → order, with the share kept at each step.",
                (chart,) if chart else (),
                (table(frame),),
            )
        )
    return sections


def _funnel_chart(frame: pd.DataFrame, keys: list[str]) -> str:
    if frame.empty:
        return charts.no_data("no impressions in the log")

    def draw(axes: charts.Axes) -> None:
        width = 0.8 / len(STEPS)
        positions = np.arange(len(frame))
        for k, step in enumerate(STEPS):
            axes.bar(
                positions + k * width, frame[step].clip(lower=0.5), width, label=step, color=charts.PALETTE[k]
            )
        axes.set_yscale("log")
        axes.set_xticks(positions + 0.4 - width / 2, frame[keys[0]].astype(str), rotation=20, ha="right")
        axes.set_ylabel("events (log scale)")
        axes.legend(fontsize="small")

    return charts.svg(draw)


def audiences(directory: str) -> list[Section]:
    version, tags = data.audience_tags(Path(directory))
    if not version:
        return [
            Section(
                "No audience set",
                "The service runs without --audiences, or the set has no version yet.",
                (charts.no_data("no audiences"),),
                (table(pd.DataFrame({"tag": []})),),
            )
        ]
    sizes = tags.groupby("tag")["user_id"].nunique().sort_values(ascending=False)
    top = sizes.index[:TAGS_DRAWN].tolist()
    members = {t: set(tags.loc[tags["tag"] == t, "user_id"]) for t in top}
    overlap = np.array([[len(members[a] & members[b]) for b in top] for a in top], dtype=float)
    since = tags.assign(day=pd.to_datetime(tags["since"], utc=True).dt.floor("D"))
    trend = {
        t: (g.index, g.to_numpy().cumsum())
        for t, g in since[since["tag"].isin(top)].groupby(["tag", "day"]).size().groupby(level=0)
        for g in [g.droplevel(0)]
    }
    examples = tags.groupby("tag").head(3).assign(user=lambda f: f["user_id"].map(hash_id))
    examples["suggested_item_ids"] = examples["suggested_item_ids"].map(lambda ids: ", ".join(list(ids)[:5]))
    size_table = sizes.rename("users").reset_index()
    return [
        Section(
            f"Tag sizes (version {version})",
            f"{tags['user_id'].nunique():,} users in {len(sizes)} tags.",
            (charts.bars(sizes.index[:20].tolist(), sizes.to_numpy()[:20].tolist(), "users"),),
            (table(size_table),),
        ),
        Section(
            "Trends",
            "Users in each tag by the day they entered it (cumulative).",
            (charts.lines(trend, "users"),),
            (),
        ),
        Section(
            "Overlap",
            "Users in both tags (the largest tags).",
            (charts.heatmap(top, overlap, "users in both"),),
            (table(pd.DataFrame(overlap, index=top, columns=top).astype(int).reset_index(names="tag")),),
        ),
        Section(
            "Example users",
            "User ids hashed as the logs hash them (SHA-256, 16 hex digits).",
            (),
            (table(examples, ["tag", "user", "category", "since", "suggested_item_ids"]),),
        ),
    ]
