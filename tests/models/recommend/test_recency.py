"""Recency-aware scoring on a planted sequential pattern: what a user does next follows their latest
items. Every training shopper goes through two kinds of items, one kind after the other; the probe
shopper went through three items of an old kind long ago and two of a new kind lately. A set-based
model (every history item alike) ranks the old kind's missing item first, on more evidence; the
recency-aware one the new kind's, and it does so through the artifact and the serving code's context,
as the service and the evaluation score."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.recommend.artifact import RecommenderArtifact
from models.recommend.component import ArtifactError, QueryContext
from models.recommend.components.ease import Ease, EaseParams
from models.recommend.components.popularity import Popularity, PopularityParams
from models.recommend.recommender import Recommender
from training import components, dataset
from training.components import ModelConfig
from training.evaluate import EvalQuery, query_context
from training.readers import DEFAULT_EVENT_WEIGHTS, read_items

KINDS, PER_KIND = 12, 4  # items 4k..4k+3 are of kind k
OLD, NEW = 0, 1  # the probe's kinds: items 0-2 long ago, then 4-5; items 3 and 6 are what is left


def _events() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    rows = []
    for shopper in range(300):
        first, second = rng.choice(KINDS, size=2, replace=False)
        items = [first * PER_KIND + i for i in range(PER_KIND)] + [
            second * PER_KIND + i for i in range(PER_KIND)
        ]
        rows += [(f"s{shopper}", item, 1_000 * shopper + n) for n, item in enumerate(items)]
    probe = [OLD * PER_KIND + i for i in range(3)] + [NEW * PER_KIND + i for i in range(2)]
    rows += [("probe", item, 10_000_000 + 3_600 * n) for n, item in enumerate(probe)]
    users, item_codes, times = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "timestamp": times,
            "user_id": users,
            "item_id": [f"i{i}" for i in item_codes],
            "event_type": "order",
        }
    )


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[dataset.TrainingData, pd.DataFrame]:
    path: Path = tmp_path_factory.mktemp("sequence") / "items.csv"
    n = KINDS * PER_KIND
    pd.DataFrame(
        {"item_id": [f"i{i}" for i in range(n)], "title": [f"Item {i}" for i in range(n)], "category": "c"}
    ).to_csv(path, index=False)
    items, _ = read_items(path)
    weights = DEFAULT_EVENT_WEIGHTS
    return dataset.from_events(_events(), items, None, weights, None, weights["click"]), items


def _next_item_ranks(shop: tuple[dataset.TrainingData, pd.DataFrame], half_life: float) -> tuple[int, int]:
    """(rank of the new kind's missing item, rank of the old kind's), the probe asked as the service asks."""
    data, items = shop
    model = Ease.fit(data, EaseParams(lambdas=(10.0,), recency_half_lives=(half_life,)), seed=0)
    assert model is not None
    artifact = components.artifact(
        data, items, ModelConfig(), {"ease": model, **_popularity(data)}, {"ease": 1.0}, 0.0, {"ease": 1.0}
    )
    recommender = Recommender(artifact, "evaluation")
    ctx = query_context(recommender, EvalQuery("probe", "", "", frozenset()))
    scores = recommender.scorer.blend(ctx)[0].astype(np.float64)
    scores[ctx.history] = -np.inf
    order = np.argsort(-scores, kind="stable").tolist()
    return order.index(NEW * PER_KIND + 2), order.index(OLD * PER_KIND + 3)


def _popularity(data: dataset.TrainingData) -> dict[str, Popularity]:
    return {"popularity": Popularity.fit(data, PopularityParams(), seed=0)}


def test_recency_ranks_the_next_item_of_the_latest_kind_first(shop) -> None:
    new, old = _next_item_ranks(shop, half_life=0.2)
    assert new == 0 and old > new


def test_a_set_based_model_ranks_the_old_kind_first(shop) -> None:
    new, old = _next_item_ranks(shop, half_life=0.0)
    assert old < new


def test_recency_halves_per_half_life_of_the_history_and_ties_go_to_the_later_item() -> None:
    ctx = QueryContext(
        user=0,
        history=np.array([7, 3, 5, 9]),
        history_weight=np.ones(4),
        session=np.empty(0, dtype=np.int64),
        session_weight=2.0,
        history_last_seen=np.array([100.0, 400.0, 400.0, 200.0]),
    )
    # Latest first: 5 (tie with 3, later in the catalog), 3, 9, 7; ages 0, 1/4, 2/4, 3/4.
    assert np.allclose(ctx.recency(0.25), [0.125, 0.5, 1.0, 0.25])
    assert np.array_equal(ctx.recency(0.0), np.ones(4))
    unknown = QueryContext(0, np.array([1, 2]), np.ones(2), np.empty(0, dtype=np.int64), 2.0)
    assert np.array_equal(unknown.recency(0.5), np.ones(2))


def test_the_artifact_keeps_when_history_items_were_last_seen(shop, tmp_path: Path) -> None:
    data, items = shop
    model = Ease.fit(data, EaseParams(lambdas=(10.0,), recency_half_lives=(0.2,)), seed=0)
    assert model is not None
    artifact = components.artifact(
        data, items, ModelConfig(), {"ease": model, **_popularity(data)}, {"ease": 1.0}, 0.0, {"ease": 1.0}
    )
    artifact.save(tmp_path)
    loaded = RecommenderArtifact.load(tmp_path)
    assert np.array_equal(loaded.history_last_seen, data.last_seen)
    assert loaded.components["ease"].arrays()["recency_half_life"] == 0.2
    with pytest.raises(ArtifactError, match="history_last_seen"):
        dataclasses.replace(artifact, history_last_seen=data.last_seen[:-1]).check()
