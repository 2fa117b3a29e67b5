"""Building the training arrays: confidences, what was ordered, LightFM contexts and features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.recommend.component import TrainingData
from training import dataset
from training.readers import DEFAULT_EVENT_WEIGHTS

ITEMS = pd.DataFrame(
    {
        "item_id": ["i1", "i2", "i3"],
        "category": ["sofa", "sofa", "lamp"],
        "brand": ["b", "", "c"],
        "price": [100.0, 200.0, np.nan],
        "tags": [("modern",), (), ()],
    }
)
EVENTS = pd.DataFrame(
    {
        "user_id": ["u1", "u1", "u1", "u2", "u2"],
        "item_id": ["i1", "i1", "i2", "i3", "i1"],
        "event_type": ["view", "order", "impression", "click", "click"],
        "timestamp": [0.0, 10.0, 20.0, 86400.0 * 10, 86400.0 * 10],
        "scene": ["browse", "browse", "browse", "repair", ""],
        "touchpoint": ["feed", "feed", "feed", "cart", "cart"],
    }
)
USERS = pd.DataFrame({"user_id": ["u1", "u2"], "city": ["shanghai", ""]})


def build(half_life_days: float | None = None) -> TrainingData:
    return dataset.from_events(
        EVENTS, ITEMS, USERS, DEFAULT_EVENT_WEIGHTS, half_life_days, DEFAULT_EVENT_WEIGHTS["click"]
    )


def test_confidences_sum_event_weights_and_impressions_carry_none() -> None:
    data = build()
    assert data.user_ids.tolist() == ["u1", "u2"] and data.item_ids.tolist() == ["i1", "i2", "i3"]
    dense = data.confidence.toarray()
    w = DEFAULT_EVENT_WEIGHTS
    assert dense.tolist() == [[w["view"] + w["order"], 0.0, 0.0], [w["click"], 0.0, w["click"]]]
    # Per stored entry (row-major): u1/i1 was ordered; u2's entries were not.
    assert data.ordered.tolist() == [True, False, False]
    assert data.user_cities.tolist() == ["shanghai", ""]


def test_time_decay_halves_weight_per_half_life_before_the_newest_event() -> None:
    dense = build(half_life_days=5.0).confidence.toarray()
    # u1's events are 10 days (less seconds) before the newest: a quarter of their weight.
    assert dense[0, 0] == pytest.approx(
        0.25 * (DEFAULT_EVENT_WEIGHTS["view"] + DEFAULT_EVENT_WEIGHTS["order"]), rel=1e-4
    )
    assert dense[1, 2] == pytest.approx(DEFAULT_EVENT_WEIGHTS["click"])


def test_lightfm_contexts_are_user_scene_touchpoint_with_their_positive_items() -> None:
    data = build()
    names = data.feature_names.tolist()
    contexts = [
        sorted(names[f] for f in data.context_features[row].indices)
        for row in range(data.context_features.shape[0])
    ]
    assert sorted(["city:shanghai", "scene:browse", "touchpoint:feed", "user:u1"]) in contexts
    assert sorted(["scene:repair", "touchpoint:cart", "user:u2"]) in contexts
    # Rows sum to one (the mean of their feature embeddings), positives only (the view is not one).
    assert np.allclose(np.asarray(data.context_features.sum(axis=1)).ravel(), 1.0)
    assert data.context_items.tocsr().sum() == 3  # u1/i1 (order), u2/i3 and u2/i1 (clicks)


def test_item_features_hold_identity_category_brand_and_tags() -> None:
    features, _ = dataset.item_feature_matrix(ITEMS)
    assert features.shape[0] == 3
    assert np.allclose(np.asarray(features.sum(axis=1)).ravel(), 1.0)
    # i1: item, category, brand, tag; i2: item, category (no brand); i3: item, category, brand.
    assert [features[i].nnz for i in range(3)] == [4, 2, 3]
