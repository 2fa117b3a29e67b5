"""What goes with what: declared tags, kinds bought together beyond chance, and kinds bought of one
brand, on hand-made shops whose answers are known."""

from __future__ import annotations

import numpy as np

from models.recommend.compatibility import Compatibility
from tests.support import orders_matrix, shop_features

#                      0           1           2         3         4           5          6
CATEGORIES = np.array(["purifier", "purifier", "filter", "filter", "install", "install", "lamp"])
BRANDS = np.array(["angel", "midea", "angel", "midea", "", "", "opple"])
TAGS = np.array(
    ["", "", "fits:angel", "fits:midea", "for:purifier|city:shanghai", "for:sofa|city:shanghai", ""]
)


def compatibility(
    orders: list[list[int]], brands: np.ndarray = BRANDS, tags: np.ndarray = TAGS
) -> Compatibility:
    features = shop_features(CATEGORIES, brands, tags)
    return Compatibility(CATEGORIES, brands, features, orders_matrix(orders, CATEGORIES.size))


def test_declared_tags_say_what_fits_the_brand_the_kind_and_the_city() -> None:
    model = compatibility([[0], [1], [6]])
    assert model.declared(0).tolist() == [0, 0, 1, -1, 1, -1, 0]
    assert model.declared(1).tolist() == [0, 0, -1, 1, 1, -1, 0]
    assert model.declared(0, city="beijing").tolist() == [0, 0, 1, -1, -1, -1, 0]
    assert model.declared(0, city="").tolist() == [0, 0, 1, -1, -1, -1, 0]  # the city unknown
    assert model.declared(6).tolist() == [0, 0, -1, -1, -1, -1, 0]  # fits nothing of a lamp's


def test_kinds_bought_together_beyond_chance_are_related_and_others_are_not() -> None:
    # 200 customers: the purifier's buyers buy a filter, lamps are bought by anyone.
    rng = np.random.default_rng(0)
    orders = []
    for n in range(200):
        order = [0, 2] if n < 60 else [6]
        if rng.random() < 0.3:
            order.append(6)
        orders.append(sorted(set(order)))
    model = compatibility(orders, tags=np.array([""] * CATEGORIES.size))
    related = model.related(np.array([0]), np.arange(CATEGORIES.size))[0]
    assert related[[0, 1, 2, 3]].all()  # its own kind, and filters
    assert not related[6]  # lamps are bought by the purifier's buyers no more than by anyone


def test_declared_tags_decide_relatedness_where_they_say_anything() -> None:
    model = compatibility([[0], [1], [6]])
    assert model.declared_for(0).tolist() == [2, 4]
    assert model.declared_for(0, city="beijing").tolist() == [2]
    related = model.related(np.array([0, 6]), np.array([2, 3, 4, 5]))
    assert related.tolist() == [[True, False, True, False], [False, False, False, False]]


def test_kinds_bought_of_one_brand_are_found_from_the_log_without_tags() -> None:
    untagged = np.array([""] * CATEGORIES.size)
    # Filters follow the purifier's brand; lamps of any brand go with anything.
    loyal = [[0, 2]] * 40 + [[1, 3]] * 40 + [[0, 3]] * 2
    model = compatibility(loyal, tags=untagged)
    assert model.of_its_brand(0).tolist() == [2]
    assert model.of_its_brand(1).tolist() == [3]
    mixed = [[0, 2]] * 20 + [[0, 3]] * 20 + [[1, 2]] * 20 + [[1, 3]] * 20
    assert not compatibility(mixed, tags=untagged).of_its_brand(0).size
