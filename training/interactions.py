"""From validated events to the user × item confidence matrix the models learn from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp


@dataclass(frozen=True)
class Interactions:
    user_ids: np.ndarray  # str, one per row
    item_ids: np.ndarray  # str, one per column: the whole catalog, in catalog order
    confidence: sp.csr_matrix  # users × items, summed event weights (decayed)


def event_confidence(
    events: pd.DataFrame, weights: dict[str, float], half_life_days: float | None
) -> np.ndarray:
    """Each event's weight by type, halved for every `half_life_days` it lies before the newest event."""
    weight = events["event_type"].map(weights).to_numpy(dtype=np.float64)
    if half_life_days:
        age_days = (events["timestamp"].max() - events["timestamp"].to_numpy()) / 86400.0
        weight = weight * np.power(0.5, age_days / half_life_days)
    return weight


def build(
    events: pd.DataFrame, item_ids: np.ndarray, weights: dict[str, float], half_life_days: float | None = None
) -> Interactions:
    """Repeated events of a user on an item add up; users with no weighted event are left out."""
    weight = event_confidence(events, weights, half_life_days)
    positive = weight > 0
    users, user_codes = np.unique(events["user_id"].to_numpy()[positive].astype(str), return_inverse=True)
    column = pd.Index(item_ids)
    item_codes = column.get_indexer(events["item_id"].to_numpy()[positive])
    if (item_codes < 0).any():
        raise ValueError("events refer to items outside the catalog")
    matrix = sp.csr_matrix(
        (weight[positive].astype(np.float32), (user_codes, item_codes)), shape=(len(users), len(item_ids))
    )
    matrix.sum_duplicates()
    return Interactions(users, np.asarray(item_ids).astype(str), matrix)
