"""Substitutes and complements on a hand-made shop: purifiers are bought with filters and installation,
sofas with coffee tables."""

import numpy as np
import scipy.sparse as sp

from models.recommend import content
from models.recommend.relations import ItemRelations
from tests.support import orders_matrix, shop_features

#                      0            1            2         3         4          5        6
CATEGORIES = np.array(["purifier", "purifier", "filter", "filter", "install", "sofa", "table"])
BRANDS = np.array(["angel", "angel", "angel", "other", "", "oak", "oak"])
TAGS = np.array(["ro", "ro|uv", "ro", "", "", "nordic", "nordic"])
# Users × items: who ordered what.
ORDERS = [
    [0, 2, 4],
    [0, 2],
    [1, 3],
    [5, 6],
    [5, 6],
    [5],
    [1, 2, 4],
]


def relations(orders: list[list[int]] = ORDERS) -> ItemRelations:
    features = shop_features(CATEGORIES, BRANDS, TAGS)
    return ItemRelations(CATEGORIES, BRANDS, features, orders_matrix(orders, CATEGORIES.size))


def test_substitutes_put_the_same_kind_first_whatever_co_view_says() -> None:
    model = relations()
    co_view = np.array([0.0, 0.1, 1.0, 1.0, 1.0, 0.0, 0.0])  # filters are viewed with purifier 0 most
    scores = model.substitutes(0, co_view)
    others = np.delete(np.arange(CATEGORIES.size), [0, 1])
    assert scores[1] > scores[others].max()


def test_content_similarity_counts_shared_category_brand_and_tags() -> None:
    similarity = relations().content_similarity(0)
    assert similarity[0] == np.float32(1.0) or np.isclose(similarity[0], 1.0)
    assert similarity[1] > similarity[2] > similarity[3]  # same kind and brand > brand and tag > nothing
    assert similarity[5] == 0.0


def test_complements_rank_what_the_anchors_buyers_bought_first() -> None:
    model = relations()
    scores, _ = model.complements(0)
    assert (
        scores[2] > scores[4] > scores[3]
    )  # filter 2 bought twice with 0, installation once, filter 3 never
    assert scores[2] > scores[6] and scores[4] > scores[6]
    assert model.co_purchase(0)[3] == 0.0


def test_an_item_nobody_bought_gets_the_categories_bought_with_its_own() -> None:
    model = relations([[1] if o == [1, 3] else o for o in ORDERS])
    never = 3  # filter 3; filters were bought with purifiers by three users, with installation by two
    assert not model.co_purchase(never).any()
    affinity = model.category_affinity(never)
    assert affinity[0] == affinity[1] == 1.0 and np.isclose(affinity[4], 2 / 3) and affinity[6] == 0.0
    scores, _ = model.complements(never)
    assert min(scores[0], scores[1]) > scores[4] > scores[6]


def test_among_complements_nobody_bought_with_it_the_items_sharing_its_content_come_first() -> None:
    categories = np.array(["purifier", "purifier", "filter", "filter"])
    features = content.catalog_features(
        categories, np.array(["angel", "other", "other", "angel"]), np.full(4, np.nan), np.array([""] * 4)
    )
    ordered = sp.csr_matrix((np.ones(4), ([0, 0, 1, 1], [1, 2, 1, 3])), shape=(2, 4))
    model = ItemRelations(categories, np.array(["angel", "other", "other", "angel"]), features, ordered)
    scores, _ = model.complements(0)  # an Angel purifier nobody has bought yet
    assert not model.co_purchase(0).any()
    assert scores[3] > scores[2]  # the Angel filter before the other brand's, equally popular


def test_goes_with_scores_its_items_exactly_as_the_full_pass_does() -> None:
    """goes_with looks rows up in plain numpy; complements scores the whole catalog with scipy."""
    model = relations()
    for anchor in range(CATEGORIES.size):
        items, scores = model.goes_with(anchor, city="x")
        full, goes = model.complements(anchor)
        assert np.allclose(scores, full[items], rtol=1e-6, atol=1e-9)
        assert goes[items].all()
        assert np.allclose(
            model._content_at(anchor, np.arange(CATEGORIES.size)), model.content_similarity(anchor)
        )
