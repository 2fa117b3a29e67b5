"""The touchpoint review: per touchpoint, the content shown ranked by click-through and conversion (by
category and by item), the slots (touchpoint and scene) whose CTR falls below the others', and the
funnel impression → click → cart → order per touchpoint, scene and category with the drop-off at each step.

Impressions are the log's impression events. A click, cart or order is credited to the impression it came
from (training/experiment_log.credited_sql): the touchpoint and scene of its recommendation id's first
impression, or, without an id, of the same user's latest impression of the same item in the window
before it; events that no impression led to (organic) are left out. Counts are events.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd

from models import experiment_stats as st
from training.engines import DuckDB
from training.experiment_log import credited_sql
from training.report import Page

STEPS = ("impressions", "clicks", "carts", "orders")
MIN_ITEM_IMPRESSIONS = 30  # an item shown fewer times has a CTR too noisy to rank
ITEMS_LISTED = 10


def _counts(engine: DuckDB, by: str, window_s: float) -> pd.DataFrame:
    """Impressions, clicks, carts, orders and revenue per `by` (columns of touchpoint, scene, item_id,
    user_id; the item of a credited event is the item acted on)."""
    credited = credited_sql("impressions", ("touchpoint", "scene"), window_s)
    return engine.frame(
        f"""
        WITH credited AS ({credited}),
        shown AS (SELECT {by}, count(*) AS impressions FROM impressions GROUP BY {by}),
        acted AS (SELECT {by}, count(*) FILTER (WHERE event_type = 'click') AS clicks,
                         count(*) FILTER (WHERE event_type = 'cart') AS carts,
                         count(*) FILTER (WHERE event_type = 'order') AS orders,
                         coalesce(sum(value) FILTER (WHERE event_type = 'order'), 0) AS revenue
                  FROM credited GROUP BY {by})
        SELECT * FROM shown FULL OUTER JOIN acted USING ({by})"""
    ).fillna({c: 0 for c in (*STEPS, "revenue")})


def review(engine: DuckDB, items: pd.DataFrame | None, window_s: float, alpha: float) -> dict[str, Any]:
    engine.table(
        "impressions",
        "SELECT recommendation_id, user_id, item_id, timestamp, touchpoint, scene FROM log "
        "WHERE event_type = 'impression' AND touchpoint <> ''",
    )
    per_item = _counts(engine, "touchpoint, scene, item_id", window_s)
    per_user = _counts(engine, "touchpoint, scene, user_id", window_s)
    engine.drop("impressions")
    categories = items.set_index("item_id")["category"] if items is not None else None
    per_item["category"] = per_item["item_id"].map(categories) if categories is not None else ""
    per_item["category"] = per_item["category"].fillna("(not in catalog)")
    return {
        "slots": _slots(per_user, alpha),
        "funnels": _funnels(per_item, ["touchpoint", "scene", "category"]),
        "touchpoint_funnels": _funnels(per_item, ["touchpoint"]),
        "categories": _ranked(per_item, ["touchpoint", "category"], 0),
        "items": _ranked(per_item, ["touchpoint", "item_id", "category"], MIN_ITEM_IMPRESSIONS),
    }


def _slots(per_user: pd.DataFrame, alpha: float) -> list[dict[str, Any]]:
    """Each slot's CTR against all other slots' on the same users' sums (paired delta method); flagged
    when the whole interval of the difference lies below zero."""
    if not per_user["impressions"].any():
        return []
    wide = per_user.pivot_table(
        index="user_id", columns=["touchpoint", "scene"], values=["impressions", "clicks"], fill_value=0
    )
    shown, clicks = wide["impressions"].to_numpy(float), wide["clicks"].to_numpy(float)
    total_shown, total_clicks = shown.sum(axis=1), clicks.sum(axis=1)
    z = float(st.stats.norm.ppf(1 - alpha / 2))
    slots = []
    for j, (touchpoint, scene) in enumerate(wide["impressions"].columns):
        own = st.ratio(clicks[:, j], shown[:, j])
        gap = st.paired_difference(
            clicks[:, j], shown[:, j], total_clicks - clicks[:, j], total_shown - shown[:, j]
        )
        low, high = gap.interval(z)
        slots.append(
            {
                "touchpoint": touchpoint,
                "scene": scene,
                "users": int((shown[:, j] > 0).sum()),
                "impressions": int(shown[:, j].sum()),
                "ctr": own.value,
                "ctr_low": own.interval()[0],
                "ctr_high": own.interval()[1],
                "vs_others": gap.value,
                "vs_others_low": low,
                "vs_others_high": high,
                "below_others": bool(high < 0),
            }
        )
    return slots


def _funnels(per_item: pd.DataFrame, by: list[str]) -> list[dict[str, Any]]:
    table = per_item.groupby(by, as_index=False)[[*STEPS, "revenue"]].sum()
    for before, after in itertools.pairwise(STEPS):
        kept = table[after] / table[before].where(table[before] > 0)
        table[f"drop_{before}_to_{after}"] = 1 - kept
    return _records(table)


def _ranked(per_item: pd.DataFrame, by: list[str], minimum: int) -> list[dict[str, Any]]:
    """Per touchpoint, the groups ranked by CTR (conversion next); for items only those shown at least
    `minimum` times, the best and the worst ITEMS_LISTED."""
    table = per_item.groupby(by, as_index=False)[[*STEPS, "revenue"]].sum()
    table = table[table["impressions"] >= max(minimum, 1)].copy()
    table["ctr"] = table["clicks"] / table["impressions"]
    table["conversion"] = table["orders"] / table["impressions"]
    table = table.sort_values(["touchpoint", "ctr", "conversion"], ascending=[True, False, False])
    if minimum:
        ends = table.groupby("touchpoint", group_keys=False)
        table = pd.concat([ends.head(ITEMS_LISTED), ends.tail(ITEMS_LISTED)]).drop_duplicates()
        table = table.sort_values(["touchpoint", "ctr", "conversion"], ascending=[True, False, False])
    return _records(table)


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows for JSON: numpy scalars as Python ones, NaN as null."""
    clean = table.astype(object).where(table.notna(), None)
    return [
        {k: v.item() if isinstance(v, np.generic) else v for k, v in row.items()}
        for row in clean.to_dict("records")
    ]


def render(page: Page, review: dict[str, Any]) -> None:
    page.heading("Touchpoints: slots")
    page.text(
        "Each slot (touchpoint and scene) against all the others: CTR per impression event with its "
        "per-user 95% interval; a slot whose difference to the others lies wholly below zero is flagged."
    )
    slots = _frame(review["slots"])
    if slots.empty:
        page.text("No impressions in the period.")
        return
    page.table(slots)
    page.chart("slots_ctr", lambda f: _draw_slots(f, slots), size=(8, max(2.5, 0.35 * len(slots))))
    page.heading("Funnels: impression → click → cart → order")
    funnels = _frame(review["touchpoint_funnels"])
    page.chart("funnels", lambda f: _draw_funnels(f, funnels), size=(9, 4))
    page.table(funnels)
    page.text("Per touchpoint, scene and category:")
    page.table(_frame(review["funnels"]))
    page.heading("Content by category (ranked by CTR, then conversion)")
    page.table(_frame(review["categories"]))
    page.heading(
        f"Items: the best and worst {ITEMS_LISTED} per touchpoint (≥ {MIN_ITEM_IMPRESSIONS} impressions)"
    )
    page.table(_frame(review["items"]))


def _frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Records back as a table, nulls (rates of nothing) as NaN so they show empty."""
    return pd.DataFrame(records).replace({None: np.nan})


def _draw_slots(figure: Any, slots: pd.DataFrame) -> None:
    axes = figure.subplots()
    labels = slots["touchpoint"] + " / " + slots["scene"].replace("", "(none)")
    positions = np.arange(len(slots))
    errors = [slots["ctr"] - slots["ctr_low"], slots["ctr_high"] - slots["ctr"]]
    colours = np.where(slots["below_others"], "#d95f02", "#7fa7d4")
    axes.barh(positions, slots["ctr"], xerr=errors, color=colours, capsize=3)
    axes.set_yticks(positions, labels)
    axes.invert_yaxis()
    axes.set_xlabel("CTR (95% interval; orange: below the other slots)")


def _draw_funnels(figure: Any, funnels: pd.DataFrame) -> None:
    axes = figure.subplots()
    width = 0.8 / len(STEPS)
    positions = np.arange(len(funnels))
    for k, step in enumerate(STEPS):
        axes.bar(positions + k * width, funnels[step].clip(lower=0.5), width, label=step)
    axes.set_yscale("log")
    axes.set_xticks(positions + 0.4 - width / 2, funnels["touchpoint"], rotation=20, ha="right")
    axes.set_ylabel("events (log scale)")
    axes.legend()
