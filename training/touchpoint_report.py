"""How each touchpoint's content performs: impressions, clicks and orders per touchpoint and scene.

An event that carries a `recommendation_id` counts for the touchpoint and scene where that
recommendation was shown (its first impression), so an order placed in the cart is credited to the
slot whose recommendation led to it; other events count where they happened.

The rates are shares of recommended impressions (an item shown under a recommendation id) that led to a
click, or an order, of that item under that id: each impression converts at most once, so a rate
cannot pass 100%, and clicks and orders that no recommendation led to (organic ones, counted in
`clicks` and `orders`) do not inflate it. The counting runs in the event store's engine.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.event_store import EventStore


def touchpoint_report(store: EventStore) -> pd.DataFrame:
    counts, converted = store.touchpoint_counts()
    counts = counts.set_index(["touchpoint", "scene"])[["impressions", "clicks", "orders"]].astype(np.int64)
    totals = counts.groupby(level="touchpoint").sum()
    totals.index = pd.MultiIndex.from_arrays(
        [totals.index, ["(all)"] * len(totals)], names=["touchpoint", "scene"]
    )
    table = pd.concat([counts, totals]).sort_index().reset_index()
    columns = ["recommended_impressions", "clicked_impressions", "ordered_impressions"]
    overall = converted.groupby("touchpoint")[columns].sum().reset_index().assign(scene="(all)")
    rates = pd.concat([converted, overall], ignore_index=True)
    table = table.merge(rates, on=["touchpoint", "scene"], how="left")
    shown_count = table.pop("recommended_impressions").where(lambda n: n > 0)
    table["click_through_rate"] = table.pop("clicked_impressions") / shown_count
    table["conversion_rate"] = table.pop("ordered_impressions") / shown_count
    return table
