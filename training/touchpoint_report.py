"""How each touchpoint's content performs: impressions, clicks and orders per touchpoint and scene.

An event that carries a `recommendation_id` counts for the touchpoint and scene where that
recommendation was shown (its first impression), so an order placed in the cart is credited to the
slot whose recommendation led to it; other events count where they happened.

The rates are shares of recommended impressions (an item shown under a recommendation id) that led to a
click, or an order, of that item under that id: each impression converts at most once, so a rate
cannot pass 100%, and clicks and orders that no recommendation led to (organic ones, counted in
`clicks` and `orders`) do not inflate it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def touchpoint_report(events: pd.DataFrame) -> pd.DataFrame:
    shown = events[(events["event_type"] == "impression") & (events["recommendation_id"] != "")]
    origin = shown.groupby("recommendation_id")[["touchpoint", "scene"]].first()
    attributed = events[["recommendation_id", "event_type", "touchpoint", "scene"]].copy()
    has_origin = attributed["recommendation_id"].isin(origin.index)
    for column in ("touchpoint", "scene"):
        attributed.loc[has_origin, column] = attributed.loc[has_origin, "recommendation_id"].map(
            origin[column]
        )
    attributed = attributed[attributed["touchpoint"] != ""]
    counts = (
        attributed[attributed["event_type"].isin(["impression", "click", "order"])]
        .groupby(["touchpoint", "scene", "event_type"])
        .size()
        .unstack("event_type", fill_value=0)
        .reindex(columns=["impression", "click", "order"], fill_value=0)
    )
    totals = counts.groupby(level="touchpoint").sum()
    totals.index = pd.MultiIndex.from_arrays(
        [totals.index, ["(all)"] * len(totals)], names=["touchpoint", "scene"]
    )
    table = pd.concat([counts, totals]).sort_index().reset_index()
    table.columns = ["touchpoint", "scene", "impressions", "clicks", "orders"]
    rates = _rates(events, origin)
    table = table.merge(rates, on=["touchpoint", "scene"], how="left")
    shown_count = table.pop("recommended_impressions").where(lambda n: n > 0)
    table["click_through_rate"] = table.pop("clicked_impressions") / shown_count
    table["conversion_rate"] = table.pop("ordered_impressions") / shown_count
    return table


def _rates(events: pd.DataFrame, origin: pd.DataFrame) -> pd.DataFrame:
    """Per touchpoint and scene (and "(all)"): recommended impressions, and how many of them were
    clicked and ordered (each (recommendation, item) counted at most as often as it was shown)."""
    item = events["item_id"] if "item_id" in events.columns else pd.Series("", index=events.index)
    keyed = events.assign(item_id=item)
    keyed = keyed[keyed["recommendation_id"].isin(origin.index)]
    per_pair = (
        keyed[keyed["event_type"].isin(["impression", "click", "order"])]
        .groupby(["recommendation_id", "item_id", "event_type"])
        .size()
        .unstack("event_type", fill_value=0)
        .reindex(columns=["impression", "click", "order"], fill_value=0)
    )
    per_pair = per_pair[per_pair["impression"] > 0]
    converted = pd.DataFrame(
        {
            "recommended_impressions": per_pair["impression"],
            "clicked_impressions": np.minimum(per_pair["click"], per_pair["impression"]),
            "ordered_impressions": np.minimum(per_pair["order"], per_pair["impression"]),
        }
    ).reset_index()
    converted = converted.join(origin, on="recommendation_id")
    columns = ["recommended_impressions", "clicked_impressions", "ordered_impressions"]
    by_scene = converted.groupby(["touchpoint", "scene"])[columns].sum().reset_index()
    overall = converted.groupby("touchpoint")[columns].sum().reset_index().assign(scene="(all)")
    return pd.concat([by_scene, overall], ignore_index=True)
