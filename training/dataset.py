"""Validated tables in, the arrays every model trains on out: users × items confidences, what was
ordered, LightFM's contexts (a user in a scene at a touchpoint) and the features of both sides."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

PRICE_BANDS = 4


def event_confidence(
    events: pd.DataFrame, weights: dict[str, float], half_life_days: float | None
) -> np.ndarray:
    """Each event's weight by type, halved for every `half_life_days` it lies before the newest event."""
    weight = events["event_type"].map(weights).to_numpy(dtype=np.float64)
    if half_life_days:
        age_days = (events["timestamp"].max() - events["timestamp"].to_numpy()) / 86400.0
        weight = weight * np.power(0.5, age_days / half_life_days)
    return weight


@dataclass(frozen=True)
class Dataset:
    item_ids: np.ndarray  # str, catalog order
    user_ids: np.ndarray  # str, users with a weighted event
    confidence: sp.csr_matrix  # users × items, summed (decayed) event weights
    ordered: np.ndarray  # bool per entry of `confidence`: the user ordered the item
    user_cities: np.ndarray  # str, "" when unknown
    # LightFM: one row per (user, scene, touchpoint) with positive events.
    context_user: np.ndarray  # user index per context row
    context_features: sp.csr_matrix  # contexts × features, rows summing to 1
    context_items: sp.coo_matrix  # contexts × items, 1 where positive
    feature_names: np.ndarray  # str, user-side features
    user_features: sp.csr_matrix  # users × features: each known user's own features (id, attributes)
    item_features: sp.csr_matrix  # items × item-side features, rows summing to 1


def _row_normalised(matrix: sp.csr_matrix) -> sp.csr_matrix:
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    return sp.diags(1.0 / np.where(sums > 0, sums, 1.0)) @ matrix


def item_feature_matrix(items: pd.DataFrame) -> sp.csr_matrix:
    """Identity, category, brand, price band within the category, and tags."""
    price = items["price"]
    band = price.groupby(items["category"]).transform(
        lambda p: (
            pd.qcut(p.rank(method="first"), q=min(PRICE_BANDS, max(p.notna().sum(), 1)), labels=False)
            if p.notna().sum() >= PRICE_BANDS
            else pd.Series(np.nan, index=p.index)
        )
    )
    rows: list[list[str]] = []
    for i, row in enumerate(items.itertuples(index=False)):
        names = [f"item:{row.item_id}", f"category:{row.category}"]
        if row.brand:
            names.append(f"brand:{row.brand}")
        if not np.isnan(band.iat[i]):
            names.append(f"price_band:{row.category}:{int(band.iat[i])}")
        names += [f"tag:{t}" for t in row.tags]
        rows.append(names)
    return _row_normalised(_one_hot(rows)[0])


def _one_hot(rows: list[list[str]], vocabulary: dict[str, int] | None = None) -> tuple[sp.csr_matrix, dict]:
    vocabulary = {} if vocabulary is None else vocabulary
    indptr, indices = [0], []
    for names in rows:
        for name in dict.fromkeys(names):
            indices.append(vocabulary.setdefault(name, len(vocabulary)))
        indptr.append(len(indices))
    matrix = sp.csr_matrix(
        (np.ones(len(indices), dtype=np.float32), np.array(indices, dtype=np.int32), np.array(indptr)),
        shape=(len(rows), max(len(vocabulary), 1)),
    )
    return matrix, vocabulary


def build(
    events: pd.DataFrame,
    items: pd.DataFrame,
    users: pd.DataFrame | None,
    weights: dict[str, float],
    half_life_days: float | None,
    positive_weight: float,
) -> Dataset:
    """`positive_weight`: events of at least this weight are LightFM positives (click and up by default)."""
    weight = event_confidence(events, weights, half_life_days)
    keep = weight > 0
    events, weight = events[keep], weight[keep]
    item_ids = items["item_id"].to_numpy().astype(str)
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
    user_features, vocabulary = _one_hot(own)

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
    context_features, vocabulary = _one_hot(context_names, vocabulary)
    n_features = len(vocabulary)
    context_items = sp.coo_matrix(
        (np.ones(len(contexts), dtype=np.float32), (row_of, contexts["item"].to_numpy())),
        shape=(len(keys), len(item_ids)),
    ).tocsr()
    context_items.data[:] = 1.0
    names = np.empty(n_features, dtype=object)
    for name, index in vocabulary.items():
        names[index] = name
    return Dataset(
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
        item_features=item_feature_matrix(items),
    )


def _pad(matrix: sp.csr_matrix, n_columns: int) -> sp.csr_matrix:
    return sp.csr_matrix((matrix.data, matrix.indices, matrix.indptr), shape=(matrix.shape[0], n_columns))


def _user_attributes(users: pd.DataFrame | None, user_ids: np.ndarray) -> pd.DataFrame:
    if users is None:
        return pd.DataFrame(index=pd.Index(user_ids))
    table = users.set_index("user_id").reindex(user_ids).fillna("")
    return table.astype(str)
