"""Serving-time recommendation: filters before truncation, touchpoint rules, cold start, session folding,
the blend, and explanations."""

from __future__ import annotations

import dataclasses
from typing import cast

import numpy as np
import pytest
import scipy.sparse as sp

from models.recommend import touchpoints
from models.recommend.artifact import ArtifactError, RecommenderArtifact
from models.recommend.components import NAMES
from models.recommend.components.als import Als
from models.recommend.components.ease import Ease
from models.recommend.components.lightfm import LightFM
from models.recommend.components.popularity import Popularity
from models.recommend.explain import leading
from models.recommend.recommender import (
    ItemFilter,
    Query,
    ReasonCode,
    Recommender,
    Relation,
    UnknownItemError,
)
from models.recommend.scoring import Term, standardise
from models.recommend.touchpoints import TouchpointConfigError, TouchpointRule, TouchpointRules
from tests.support import CATEGORIES, N_ITEMS, N_USERS, K, ids, make_artifact


def als_of(artifact: RecommenderArtifact) -> Als:
    return cast(Als, artifact.components["als"])


def lightfm_of(artifact: RecommenderArtifact) -> LightFM:
    return cast(LightFM, artifact.components["lightfm"])


ANY_STOCK = ItemFilter(in_stock_only=False)


@pytest.fixture
def model() -> Recommender:
    return Recommender(make_artifact(), "v1")


def index(item_id: str) -> int:
    return int(item_id[1:])


def history_of(artifact: RecommenderArtifact, user: int) -> tuple[list[int], list[bool]]:
    lo, hi = artifact.history_indptr[user], artifact.history_indptr[user + 1]
    return artifact.history_indices[lo:hi].tolist(), artifact.history_ordered[lo:hi].tolist()


def test_known_user_ranks_by_their_als_vector_leaving_out_what_they_ordered(model: Recommender) -> None:
    artifact = make_artifact()
    items, ordered = history_of(artifact, 2)
    bought = {i for i, o in zip(items, ordered, strict=True) if o}
    scores = als_of(artifact).item_factors @ als_of(artifact).user_factors[2]
    allowed = [i for i in range(N_ITEMS) if artifact.item_in_stock[i] and i not in bought]
    expected = sorted(allowed, key=lambda i: -scores[i])[:5]
    got = model.recommend(Query(user_id="u2", limit=5))
    assert ids(got) == [f"i{i}" for i in expected]
    assert [i.score for i in got] == pytest.approx(list(standardise(scores)[expected]), rel=1e-5)


def test_ordered_items_of_repeatable_categories_may_come_back() -> None:
    artifact = make_artifact()
    user = next(u for u in range(N_USERS) if any(o for o in history_of(artifact, u)[1]))
    items, ordered = history_of(artifact, user)
    bought = {f"i{i}" for i, o in zip(items, ordered, strict=True) if o}
    everything = Query(user_id=f"u{user}", limit=N_ITEMS, filter=ANY_STOCK)
    assert not bought & set(ids(Recommender(artifact, "v").recommend(everything)))
    repeat = TouchpointRules(TouchpointRule(repeatable_categories=frozenset({"sofa", "lamp", "filter"})))
    assert bought <= set(ids(Recommender(artifact, "v", repeat).recommend(everything)))


def test_filters_apply_before_truncation_so_limit_items_come_back(model: Recommender) -> None:
    f = ItemFilter(include_categories=frozenset({"sofa"}), min_price=100.0, max_price=300.0)
    items = model.recommend(Query(user_id="nobody", limit=5, filter=f, exclude_item_ids=("i11",)))
    qualifying = [
        i for i in range(N_ITEMS) if CATEGORIES[i] == "sofa" and 100 <= i * 10 <= 300 and i % 5 and i != 11
    ]
    assert len(items) == 5 and {index(i.item_id) for i in items} <= set(qualifying)


def test_limit_larger_than_qualifying_items_returns_all_of_them(model: Recommender) -> None:
    f = ItemFilter(include_categories=frozenset({"lamp"}), max_price=100.0)
    items = model.recommend(Query(user_id="nobody", limit=50, filter=f))
    assert sorted(index(i.item_id) for i in items) == [i for i in range(0, 11, 2) if i % 5]


def test_stock_filter_any_admits_out_of_stock_items(model: Recommender) -> None:
    assert all(index(i.item_id) % 5 for i in model.recommend(Query(user_id="nobody", limit=N_ITEMS)))
    assert len(model.recommend(Query(user_id="nobody", limit=N_ITEMS, filter=ANY_STOCK))) == N_ITEMS


def test_price_range_excludes_items_without_a_price(model: Recommender) -> None:
    assert "i3" not in ids(
        model.recommend(Query(user_id="nobody", limit=N_ITEMS, filter=ItemFilter(min_price=0.0)))
    )


def test_exclude_categories(model: Recommender) -> None:
    f = ItemFilter(exclude_categories=frozenset({"sofa", "filter"}))
    items = model.recommend(Query(user_id="u0", limit=N_ITEMS, filter=f))
    assert items and {CATEGORIES[index(i.item_id)] for i in items} == {"lamp"}


def test_unknown_user_gets_scene_then_city_then_overall_popularity(model: Recommender) -> None:
    in_scene = model.recommend(Query(user_id="stranger", scene="new_home", limit=3))
    assert ids(in_scene) == ["i39", "i38", "i37"]
    assert in_scene[0].reasons[0].code is ReasonCode.POPULAR_IN_SCENE
    in_city = model.recommend(Query(user_id="stranger", context={"city": "shanghai"}, limit=1))
    assert ids(in_city) == ["i7"] and in_city[0].reasons[0].code is ReasonCode.POPULAR_IN_CITY
    anywhere = model.recommend(Query(user_id="stranger", scene="unknown_scene", limit=3))
    assert ids(anywhere) == ["i1", "i2", "i3"]  # i0 is out of stock
    assert anywhere[0].reasons[0].code is ReasonCode.POPULAR


def test_session_items_fold_into_the_user_vector_as_implicit_does(model: Recommender) -> None:
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    artifact = make_artifact()
    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(factors=K, regularization=0.1, alpha=5.0)
    als.user_factors = als_of(artifact).user_factors.copy()
    als.item_factors = als_of(artifact).item_factors.copy()
    recent = [7, 21]
    row = sp.csr_matrix((np.full(2, 2.0, dtype=np.float32), ([0, 0], recent)), shape=(1, N_ITEMS))
    scores = als_of(artifact).item_factors @ als.recalculate_user(0, row)
    items = model.recommend(
        Query(user_id="stranger", recent_item_ids=("i7", "i21"), limit=3, filter=ANY_STOCK)
    )
    best = [i for i in np.argsort(-scores) if i not in recent][:3]
    assert ids(items) == [f"i{i}" for i in best]
    # A session item explains only items of its kind here (nothing in this random world is bought
    # together beyond chance): the sofas, not the lamps.
    items = model.recommend(
        Query(user_id="stranger", recent_item_ids=("i7", "i21"), limit=10, filter=ANY_STOCK)
    )
    for item in items:
        reason, kind = item.reasons[0], CATEGORIES[index(item.item_id)]
        if kind == CATEGORIES[7]:
            assert reason.code is ReasonCode.SIMILAR_TO_SESSION and reason.related_item_id in {"i7", "i21"}
        else:
            assert reason.code is not ReasonCode.SIMILAR_TO_SESSION
    assert any(CATEGORIES[index(item.item_id)] == CATEGORIES[7] for item in items)


def test_known_user_reasons_name_another_item_from_their_history(model: Recommender) -> None:
    history = {f"i{i}" for i in history_of(make_artifact(), 4)[0]}
    for item in model.recommend(Query(user_id="u4", limit=5)):
        reason = item.reasons[0]
        assert reason.code in (ReasonCode.SIMILAR_TO_HISTORY, ReasonCode.BOUGHT_TOGETHER)
        assert reason.related_item_id in history and reason.related_item_id != item.item_id
        assert "Item" in reason.text


def test_blend_is_the_weighted_sum_of_standardised_components() -> None:
    weights = {"als": 0.5, "ease": 0.2, "lightfm": 0.2, "popularity": 0.1}
    model = Recommender(make_artifact(weights=weights), "v")
    ctx = model.context(Query(user_id="u0", scene="new_home", touchpoint="home_feed"), model.rules.default)
    parts = model.scorer.components(ctx)
    assert set(parts) == set(NAMES)
    expected = sum(w * standardise(parts[name]) for name, w in weights.items())
    blended, _ = model.scorer.blend(ctx)
    np.testing.assert_allclose(blended, expected, rtol=1e-5)
    # A visitor has no ALS or EASE signal: the remaining weights are renormalised.
    cold = model.context(Query(user_id="nobody", scene="new_home"), model.rules.default)
    blended, _ = model.scorer.blend(cold)
    cold_parts = model.scorer.components(cold)
    np.testing.assert_allclose(
        blended,
        (0.2 * standardise(cold_parts["lightfm"]) + 0.1 * standardise(cold_parts["popularity"])) / 0.3,
        rtol=1e-5,
    )


def test_lightfm_query_is_the_mean_of_the_user_scene_and_touchpoint_features() -> None:
    artifact = make_artifact(weights={"lightfm": 1.0})
    model = Recommender(artifact, "v")
    ctx = model.context(Query(user_id="u0", scene="new_home", touchpoint="home_feed"), model.rules.default)
    lightfm = lightfm_of(artifact)
    assert sorted(lightfm.features(ctx).tolist()) == [0, 1, 2, 3]
    query = lightfm.feature_embeddings.mean(axis=0)
    expected = lightfm.item_embeddings @ query + lightfm.item_bias
    np.testing.assert_allclose(model.scorer.components(ctx)["lightfm"], expected, rtol=1e-5)
    visitor = model.context(Query(user_id="x", context={"city": "shanghai"}), model.rules.default)
    popularity = cast(Popularity, artifact.components["popularity"])
    assert lightfm.features(visitor).tolist() == [1] and popularity.city_of(visitor) == 0


def test_novelty_pushes_personal_answers_to_the_long_tail_but_not_cold_ones() -> None:
    plain = Recommender(make_artifact(weights={"als": 1.0}), "v")
    novel = Recommender(make_artifact(weights={"als": 1.0}, novelty=5.0), "v")
    popularity_rank = {f"i{i}": i for i in range(N_ITEMS)}  # overall popularity falls with the index
    query = Query(user_id="u1", limit=5, filter=ANY_STOCK)
    mean_rank = [np.mean([popularity_rank[i] for i in ids(m.recommend(query))]) for m in (plain, novel)]
    assert mean_rank[1] > mean_rank[0]
    cold = Query(user_id="nobody", limit=5)
    assert ids(plain.recommend(cold)) == ids(novel.recommend(cold))


def test_touchpoint_pool_default_scene_and_category_cap() -> None:
    rules = touchpoints.parse(
        {
            "default": {"max_per_category": 2},
            "touchpoint": {
                "reminder": {"categories": ["filter"], "default_scene": "new_home", "max_per_category": 0}
            },
        }
    )
    model = Recommender(make_artifact(), "v", rules)
    reminder = model.recommend(Query(user_id="stranger", touchpoint="reminder", limit=3, filter=ANY_STOCK))
    assert ids(reminder) == ["i39", "i38", "i37"]  # the filter pool, ranked by new_home popularity
    feed = model.recommend(Query(user_id="stranger", touchpoint="feed", limit=6, filter=ANY_STOCK))
    assert [CATEGORIES[index(i.item_id)] for i in feed].count("lamp") <= 2 + 0
    assert len(feed) == 6  # three categories × two each
    # Too few categories for the cap: the best of the rest fill the remaining places.
    only_lamps = model.recommend(
        Query(
            user_id="stranger",
            touchpoint="feed",
            limit=4,
            filter=ItemFilter(include_categories=frozenset({"lamp"})),
        )
    )
    assert len(only_lamps) == 4


@pytest.mark.parametrize(
    "document",
    [
        {"default": {"max_per_category": -1}},
        {"default": {"colour": "red"}},
        {"touchpoint": {"cart": {"categories": "sofa"}}},
        {"touchpoint": {"cart": {"default_scene": 3}}},
        {"touchpoints": {}},
    ],
)
def test_bad_touchpoint_files_are_refused(document: dict) -> None:
    with pytest.raises(TouchpointConfigError):
        touchpoints.parse(document)


def test_similar_items_are_the_same_kind_first_and_skip_the_anchor(model: Recommender) -> None:
    items = model.similar("i8", 6, ANY_STOCK, ())
    assert "i8" not in ids(items)
    assert all(CATEGORIES[index(i)] == CATEGORIES[8] for i in ids(items))
    assert items[0].reasons[0].code is ReasonCode.SIMILAR_ITEM
    assert items[0].reasons[0].related_item_id == "i8" and "'Item 8'" in items[0].reasons[0].text
    with pytest.raises(UnknownItemError):
        model.similar("nope", 3, ItemFilter(), ())


def test_among_the_same_kind_with_the_same_content_the_item_to_item_model_orders() -> None:
    # Without prices, items 8 + 4k below 30 share all the anchor's content (category, brand, tags): their
    # content ties, so EASE (the first item-to-item model) orders them.
    artifact = dataclasses.replace(make_artifact(), item_prices=np.full(N_ITEMS, np.nan))
    twins = [i for i in range(0, 30, 4) if i != 8]
    found = Recommender(artifact, "v").similar("i8", N_ITEMS, ANY_STOCK, (), Relation.SIMILAR)
    ease = cast(Ease, artifact.components["ease"])
    assert [index(i) for i in ids(found) if index(i) in twins] == sorted(
        twins, key=lambda i: -ease.weights[8][i]
    )


def test_complements_are_other_kinds_bought_by_the_same_customers(model: Recommender) -> None:
    items = model.similar("i8", 5, ANY_STOCK, (), Relation.COMPLEMENTARY)
    assert items and all(CATEGORIES[index(i)] != CATEGORIES[8] for i in ids(items))
    assert items[0].reasons[0].code is ReasonCode.BOUGHT_TOGETHER


def test_artifact_round_trips_without_pickle(tmp_path) -> None:
    artifact = make_artifact()
    artifact.save(tmp_path)
    loaded = RecommenderArtifact.load(tmp_path)
    for field in dataclasses.fields(RecommenderArtifact):
        if field.name != "components":
            np.testing.assert_array_equal(getattr(loaded, field.name), getattr(artifact, field.name))
    assert list(loaded.components) == list(artifact.components)
    for name, component in artifact.components.items():
        for key, array in component.arrays().items():
            np.testing.assert_array_equal(loaded.components[name].arrays()[key], array)


@pytest.mark.parametrize(
    "change",
    [
        {"item_titles": np.array(["only one"])},
        {"blend_weights": np.zeros(len(NAMES))},
        {"history_indices": np.full(2, N_ITEMS + 5, dtype=np.int32)},
    ],
)
def test_inconsistent_artifact_is_refused(tmp_path, change: dict) -> None:
    dataclasses.replace(make_artifact(), **change).save(tmp_path)
    with pytest.raises(ArtifactError):
        RecommenderArtifact.load(tmp_path)


def test_history_leads_when_the_personal_models_together_outweigh_any_other(model: Recommender) -> None:
    terms = {
        "als": Term(np.array([2.0, 0.0, 1.0]), 1.0, 0.0),
        "ease": Term(np.array([1.5, 0.0, 1.0]), 1.0, 0.0),
        "popularity": Term(np.array([3.0, 5.0, 3.0]), 1.0, 0.0),
    }
    # Item 0: neither personal model alone beats popularity, together they do.
    led = leading(np.array([0, 1, 2]), terms, model.scorer.a.components)
    assert led == ["als", "popularity", "popularity"]
