"""Serving-time recommendation: filters before truncation, cold start, session folding, explanations."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp

from models.recommend.artifact import ArtifactError, RecommenderArtifact
from models.recommend.recommender import ItemFilter, Query, ReasonCode, Recommender, UnknownItemError

N_ITEMS, N_USERS, K = 40, 6, 4


def make_artifact(seed: int = 0) -> RecommenderArtifact:
    rng = np.random.default_rng(seed)
    history = sp.random(N_USERS, N_ITEMS, density=0.1, random_state=seed, format="csr", dtype=np.float32)
    history.data = np.round(history.data * 10 + 1)
    return RecommenderArtifact(
        item_ids=np.array([f"i{i}" for i in range(N_ITEMS)]),
        item_titles=np.array([f"Item {i}" for i in range(N_ITEMS)]),
        item_categories=np.array(["sofa" if i % 2 else "lamp" for i in range(N_ITEMS)]),
        item_prices=np.where(np.arange(N_ITEMS) == 3, np.nan, np.arange(N_ITEMS) * 10.0),
        item_in_stock=np.arange(N_ITEMS) % 5 != 0,
        user_ids=np.array([f"u{u}" for u in range(N_USERS)]),
        user_factors=rng.normal(size=(N_USERS, K)).astype(np.float32),
        item_factors=rng.normal(size=(N_ITEMS, K)).astype(np.float32),
        regularization=np.array(0.1),
        history_indptr=history.indptr.astype(np.int64),
        history_indices=history.indices.astype(np.int32),
        history_confidence=history.data.astype(np.float32),
        session_confidence=np.array(10.0),
        popularity=np.linspace(1.0, 0.0, N_ITEMS).astype(np.float32),
        scene_names=np.array(["new_home"]),
        scene_popularity=np.linspace(0.0, 1.0, N_ITEMS, dtype=np.float32)[None, :],
    )


@pytest.fixture
def model() -> Recommender:
    return Recommender(make_artifact(), "v1")


def ids(items) -> list[str]:
    return [i.item_id for i in items]


def index(item_id: str) -> int:
    return int(item_id[1:])


def history_of(artifact: RecommenderArtifact, user: int) -> set[int]:
    return set(
        artifact.history_indices[artifact.history_indptr[user] : artifact.history_indptr[user + 1]].tolist()
    )


def test_known_user_gets_dot_product_ranking_without_history_or_out_of_stock(model: Recommender) -> None:
    artifact = make_artifact()
    items = model.recommend(Query(user_id="u2", limit=5))
    scores = artifact.item_factors @ artifact.user_factors[2]
    allowed = [i for i in range(N_ITEMS) if artifact.item_in_stock[i] and i not in history_of(artifact, 2)]
    expected = sorted(allowed, key=lambda i: -scores[i])[:5]
    assert ids(items) == [f"i{i}" for i in expected]
    assert [i.score for i in items] == pytest.approx([float(scores[i]) for i in expected], rel=1e-5)


def test_filters_apply_before_truncation_so_limit_items_come_back(model: Recommender) -> None:
    f = ItemFilter(include_categories=frozenset({"sofa"}), min_price=100.0, max_price=300.0)
    items = model.recommend(Query(user_id="u1", limit=5, filter=f, exclude_item_ids=("i11",)))
    artifact = make_artifact()
    qualifying = [
        i
        for i in range(N_ITEMS)
        if i % 2 and 100 <= i * 10 <= 300 and i % 5 and i != 11 and i not in history_of(artifact, 1)
    ]
    assert len(items) == min(5, len(qualifying))
    for item in items:
        i = index(item.item_id)
        assert i in qualifying


def test_limit_larger_than_qualifying_items_returns_all_of_them(model: Recommender) -> None:
    f = ItemFilter(include_categories=frozenset({"lamp"}), max_price=100.0)
    items = model.recommend(Query(user_id="nobody", limit=50, filter=f))
    assert sorted(index(i.item_id) for i in items) == [i for i in range(0, 11, 2) if i % 5]


def test_stock_filter_any_admits_out_of_stock_items(model: Recommender) -> None:
    in_stock = model.recommend(Query(user_id="nobody", limit=N_ITEMS))
    anything = model.recommend(Query(user_id="nobody", limit=N_ITEMS, filter=ItemFilter(in_stock_only=False)))
    assert all(index(i.item_id) % 5 for i in in_stock)
    assert len(anything) == N_ITEMS


def test_price_range_excludes_items_without_a_price(model: Recommender) -> None:
    items = model.recommend(Query(user_id="nobody", limit=N_ITEMS, filter=ItemFilter(min_price=0.0)))
    assert "i3" not in ids(items)


def test_exclude_categories(model: Recommender) -> None:
    items = model.recommend(
        Query(user_id="u0", limit=N_ITEMS, filter=ItemFilter(exclude_categories=frozenset({"sofa"})))
    )
    assert items and all(index(i.item_id) % 2 == 0 for i in items)


def test_unknown_user_gets_scene_popularity_then_overall_popularity(model: Recommender) -> None:
    in_scene = model.recommend(Query(user_id="stranger", scene="new_home", limit=3))
    assert ids(in_scene) == ["i39", "i38", "i37"]
    assert in_scene[0].reasons[0].code is ReasonCode.POPULAR_IN_SCENE
    no_scene = model.recommend(Query(user_id="stranger", scene="unknown_scene", limit=3))
    assert ids(no_scene) == ["i1", "i2", "i3"]  # i0 is out of stock
    assert no_scene[0].reasons[0].code is ReasonCode.POPULAR


def test_session_items_fold_into_the_user_vector_as_implicit_does(model: Recommender) -> None:
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    artifact = make_artifact()
    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(factors=K, regularization=0.1, alpha=1.0)
    als.user_factors = artifact.user_factors.copy()
    als.item_factors = artifact.item_factors.copy()
    recent = [7, 21]
    row = sp.csr_matrix((np.full(2, 10.0, dtype=np.float32), ([0, 0], recent)), shape=(1, N_ITEMS))
    expected = als.recalculate_user(0, row)
    scores = artifact.item_factors @ expected
    items = model.recommend(
        Query(
            user_id="stranger", recent_item_ids=("i7", "i21"), limit=3, filter=ItemFilter(in_stock_only=False)
        )
    )
    best = [i for i in np.argsort(-scores) if i not in recent][:3]
    assert ids(items) == [f"i{i}" for i in best]
    assert items[0].score == pytest.approx(float(scores[best[0]]), rel=1e-3)
    assert items[0].reasons[0].code is ReasonCode.SIMILAR_TO_SESSION
    assert items[0].reasons[0].related_item_id in {"i7", "i21"}


def test_known_user_reasons_name_an_item_from_their_history(model: Recommender) -> None:
    artifact = make_artifact()
    history = {f"i{i}" for i in history_of(artifact, 4)}
    for item in model.recommend(Query(user_id="u4", limit=5)):
        reason = item.reasons[0]
        assert reason.code is ReasonCode.SIMILAR_TO_HISTORY
        assert reason.related_item_id in history and reason.related_item_id != item.item_id
        assert "Item" in reason.text


def test_similar_items_rank_by_cosine_and_skip_the_anchor(model: Recommender) -> None:
    artifact = make_artifact()
    y = artifact.item_factors / np.linalg.norm(artifact.item_factors, axis=1, keepdims=True)
    cosine = y @ y[8]
    items = model.similar("i8", 4, ItemFilter(in_stock_only=False), ())
    expected = [i for i in np.argsort(-cosine) if i != 8][:4]
    assert ids(items) == [f"i{i}" for i in expected]
    assert items[0].reasons[0].code is ReasonCode.SIMILAR_ITEM


def test_similar_items_for_an_unknown_item_raises(model: Recommender) -> None:
    with pytest.raises(UnknownItemError):
        model.similar("nope", 3, ItemFilter(), ())


def test_artifact_round_trips_without_pickle(tmp_path) -> None:
    artifact = make_artifact()
    artifact.save(tmp_path)
    loaded = RecommenderArtifact.load(tmp_path)
    for field in dataclasses.fields(RecommenderArtifact):
        np.testing.assert_array_equal(getattr(loaded, field.name), getattr(artifact, field.name))


def test_inconsistent_artifact_is_refused(tmp_path) -> None:
    broken = dataclasses.replace(make_artifact(), item_titles=np.array(["only one"]))
    broken.save(tmp_path)
    with pytest.raises(ArtifactError, match="item_titles"):
        RecommenderArtifact.load(tmp_path)
