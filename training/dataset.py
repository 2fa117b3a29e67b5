"""Aggregated events in, the arrays every model trains on out: users × items confidences, what was
ordered, LightFM's contexts (a user in a scene at a touchpoint) and the features of both sides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from models.recommend import content
from models.recommend.component import TrainingData
from training import engines
from training.event_store import Aggregates, EventStore, Part


def _row_normalised(matrix: sp.csr_matrix) -> sp.csr_matrix:
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    return sp.diags(1.0 / np.where(sums > 0, sums, 1.0)) @ matrix


def item_feature_matrix(items: pd.DataFrame) -> tuple[sp.csr_matrix, np.ndarray]:
    """Identity, then the content features (category, brand, price band within the category, tags), and
    the features' names."""
    contents = content.catalog_features(
        items["category"].to_numpy().astype(str),
        items["brand"].to_numpy().astype(str),
        items["price"].to_numpy(dtype=np.float64),
        items["tags"].map(content.TAG_SEPARATOR.join).to_numpy().astype(str),
    )
    rows = [[f"item:{item}", *names] for item, names in zip(items["item_id"], contents, strict=True)]
    vocabulary: dict[str, int] = {}
    matrix = _row_normalised(content.one_hot(rows, vocabulary))
    return matrix, np.array(list(vocabulary), dtype=str)


def build(
    aggregates: Aggregates, items: pd.DataFrame, users: pd.DataFrame | None, full_weight: float
) -> TrainingData:
    """The arrays every component fits on, from one fitting's aggregates (training/event_store.py).
    `full_weight`: the weight of one full interaction (an order)."""
    a = aggregates
    item_ids = items["item_id"].to_numpy().astype(str)
    shape = (len(a.user_ids), len(item_ids))
    confidence = sp.csr_matrix((a.pair_confidence, (a.pair_users, a.pair_items)), shape=shape)
    confidence.sort_indices()  # pairs arrive sorted and unique: the entries line up with pair_ordered

    attributes = _user_attributes(users, a.user_ids)
    cities = attributes.get("city", pd.Series("", index=a.user_ids)).to_numpy().astype(str)
    vocabulary: dict[str, int] = {}
    columns = list(attributes.columns)
    own = [
        [f"user:{u}"] + [f"{c}:{v}" for c, v in zip(columns, row, strict=True) if v]
        for u, row in zip(a.user_ids.tolist(), attributes.to_numpy().tolist(), strict=True)
    ]
    user_features = content.one_hot(own, vocabulary)
    # A context's features: its user's own, then its scene and touchpoint (when given).
    scenes = content.one_hot([[f"scene:{s}"] if s else [] for s in a.scene_names], vocabulary)
    touchpoints = content.one_hot([[f"touchpoint:{t}"] if t else [] for t in a.touchpoint_names], vocabulary)
    n_features = len(vocabulary)
    context_features = (
        _pad(user_features, n_features)[a.context_users]
        + _pad(scenes, n_features)[a.context_scenes]
        + _pad(touchpoints, n_features)[a.context_touchpoints]
    )
    n_contexts = len(a.context_users)
    context_items = sp.coo_matrix(
        (np.ones(len(a.positive_items), dtype=np.float32), (a.positive_contexts, a.positive_items)),
        shape=(n_contexts, len(item_ids)),
    )
    names = np.empty(n_features, dtype=object)
    for name, index in vocabulary.items():
        names[index] = name
    item_features, item_feature_names = item_feature_matrix(items)
    return TrainingData(
        item_ids=item_ids,
        user_ids=a.user_ids,
        confidence=confidence,
        ordered=a.pair_ordered,
        last_seen=a.pair_last_seen,
        user_cities=cities,
        context_user=a.context_users,
        context_features=_row_normalised(sp.csr_matrix(context_features)),
        context_items=context_items,
        feature_names=names.astype(str),
        user_features=_pad(user_features, n_features),
        item_features=item_features,
        item_feature_names=item_feature_names,
        event_items=a.popularity_items,
        event_weights=a.popularity_weights,
        event_scenes=a.popularity_scenes,
        event_cities=a.popularity_cities,
        full_weight=full_weight,
    )


def from_events(
    events: Path | pd.DataFrame,
    items: pd.DataFrame,
    users: pd.DataFrame | None,
    weights: dict[str, float],
    half_life_days: float | None,
    positive_weight: float,
) -> TrainingData:
    """The training data of a whole log (a file, folder or glob, or a table in memory), for tools and
    tests; the training job keeps its engine open across its three fittings instead."""
    with engines.opened("duckdb", memory_gb=2.0) as engine:
        store = EventStore(engine, weights, items["item_id"].to_numpy().astype(str))
        store.load(events) if isinstance(events, Path) else store.load_frame(events)
        store.split(positive_weight, 0.5)  # the split is not used: everything is fitted on
        cities = users[["user_id", "city"]] if users is not None and "city" in users else None
        aggregates = store.aggregates(Part.EVERYTHING, half_life_days, positive_weight, cities)
    return build(aggregates, items, users, max(weights.values()))


def _pad(matrix: sp.csr_matrix, n_columns: int) -> sp.csr_matrix:
    return sp.csr_matrix((matrix.data, matrix.indices, matrix.indptr), shape=(matrix.shape[0], n_columns))


def _user_attributes(users: pd.DataFrame | None, user_ids: np.ndarray) -> pd.DataFrame:
    if users is None:
        return pd.DataFrame(index=pd.Index(user_ids))
    table = users.set_index("user_id").reindex(user_ids).fillna("")
    return table.astype(str)
