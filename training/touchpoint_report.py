"""How each touchpoint's content performs: impressions, clicks and orders per touchpoint and scene.

An event that carries a `recommendation_id` counts for the touchpoint and scene where that
recommendation was shown (its first impression), so an order placed in the cart is credited to the
slot whose recommendation led to it; other events count where they happened.
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
    impressions = table["impressions"].where(table["impressions"] > 0)
    table["click_through_rate"] = table["clicks"] / impressions
    table["conversion_rate"] = table["orders"] / impressions
    return table.replace({np.inf: np.nan})
