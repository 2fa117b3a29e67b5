"""Validated tables in, the arrays every model trains on out: users × items confidences, what was
ordered, LightFM's contexts (a user in a scene at a touchpoint) and the features of both sides."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from models.recommend import content
from models.recommend.component import TrainingData


def event_confidence(
    events: pd.DataFrame, weights: dict[str, float], half_life_days: float | None
) -> np.ndarray:
    """Each event's weight by type, halved for every `half_life_days` it lies before the newest event."""
    weight = events["event_type"].map(weights).to_numpy(dtype=np.float64)
    if half_life_days:
        age_days = (events["timestamp"].max() - events["timestamp"].to_numpy()) / 86400.0
        weight = weight * np.power(0.5, age_days / half_life_days)
    return weight


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
    events: pd.DataFrame,
    items: pd.DataFrame,
    users: pd.DataFrame | None,
    weights: dict[str, float],
    half_life_days: float | None,
    positive_weight: float,
) -> TrainingData:
    """`positive_weight`: events of at least this weight are LightFM positives (click and up by default)."""
    weight = event_confidence(events, weights, half_life_days)
    item_ids = items["item_id"].to_numpy().astype(str)
    every_event = (
        pd.Index(item_ids).get_indexer(events["item_id"]),
        weight,
        events["scene"].to_numpy(),
        events["user_id"].to_numpy().astype(str).tolist(),
    )
    keep = weight > 0
    events, weight = events[keep], weight[keep]
    user_ids, user_codes = np.unique(events["user_id"].to_numpy().astype(str), return_inverse=True)
    item_codes = pd.Index(item_ids).get_indexer(events["item_id"])
    shape = (len(user_ids), len(item_ids))
    confidence = sp.csr_matrix((weight.astype(np.float32), (user_codes, item_codes)), shape=shape)
    confidence.sum_duplicates()
    confidence.sort_indices()
    is_order = (events["event_type"] == "order").to_numpy().astype(np.float32)
    orders = sp.csr_matrix((is_order, (user_codes, item_codes)), shape=shape)
    rows = np.repeat(np.arange(shape[0]), np.diff(confidence.indptr))
    ordered = np.asarray(orders[rows, confidence.indices]).ravel() > 0

    attributes = _user_attributes(users, user_ids)
    cities = attributes.get("city", pd.Series("", index=user_ids)).to_numpy().astype(str)
    own = [[f"user:{u}"] + [f"{c}:{v}" for c, v in attributes.loc[u].items() if v] for u in user_ids]
    vocabulary: dict[str, int] = {}
    user_features = content.one_hot(own, vocabulary)

    positive = weight >= positive_weight
    contexts = pd.DataFrame(
        {
            "user": user_codes[positive],
            "scene": events["scene"].to_numpy()[positive],
            "touchpoint": events["touchpoint"].to_numpy()[positive],
            "item": item_codes[positive],
        }
    )
    keys = contexts[["user", "scene", "touchpoint"]].drop_duplicates().reset_index(drop=True)
    row_of = pd.MultiIndex.from_frame(keys).get_indexer(
        pd.MultiIndex.from_frame(contexts[["user", "scene", "touchpoint"]])
    )
    context_names = [
        own[k.user]
        + ([f"scene:{k.scene}"] if k.scene else [])
        + ([f"touchpoint:{k.touchpoint}"] if k.touchpoint else [])
        for k in keys.itertuples(index=False)
    ]
    context_features = content.one_hot(context_names, vocabulary)
    n_features = len(vocabulary)
    context_items = sp.coo_matrix(
        (np.ones(len(contexts), dtype=np.float32), (row_of, contexts["item"].to_numpy())),
        shape=(len(keys), len(item_ids)),
    ).tocsr()
    context_items.data[:] = 1.0
    names = np.empty(n_features, dtype=object)
    for name, index in vocabulary.items():
        names[index] = name
    city_of = dict(zip(user_ids.tolist(), cities.tolist(), strict=True))
    item_features, item_feature_names = item_feature_matrix(items)
    return TrainingData(
        item_ids=item_ids,
        user_ids=user_ids,
        confidence=confidence,
        ordered=ordered,
        user_cities=cities,
        context_user=keys["user"].to_numpy(),
        context_features=_row_normalised(_pad(context_features, n_features)),
        context_items=context_items.tocoo(),
        feature_names=names.astype(str),
        user_features=_pad(user_features, n_features),
        item_features=item_features,
        item_feature_names=item_feature_names,
        event_items=every_event[0].astype(np.int64),
        event_weights=every_event[1],
        event_scenes=np.asarray(every_event[2]).astype(str),
        event_cities=np.array([city_of.get(u, "") for u in every_event[3]], dtype=str),
        full_weight=max(weights.values()),
    )


def _pad(matrix: sp.csr_matrix, n_columns: int) -> sp.csr_matrix:
    return sp.csr_matrix((matrix.data, matrix.indices, matrix.indptr), shape=(matrix.shape[0], n_columns))


def _user_attributes(users: pd.DataFrame | None, user_ids: np.ndarray) -> pd.DataFrame:
    if users is None:
        return pd.DataFrame(index=pd.Index(user_ids))
    table = users.set_index("user_id").reindex(user_ids).fillna("")
    return table.astype(str)
