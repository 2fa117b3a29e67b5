"""The live catalog over a model version: partial changes, deletions, items added since training (placed
by their content and category), and the durable store they are kept in."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from models.recommend.catalog import ItemChange
from models.recommend.catalog_store import CatalogStore
from models.recommend.component import ReasonCode
from models.recommend.recommender import ItemFilter, Query, Recommender, Relation
from models.recommend.touchpoints import TouchpointRule, TouchpointRules
from tests.support import CATEGORIES, ids, make_artifact

ANY_STOCK = ItemFilter(in_stock_only=False)


def live(changes: dict[str, ItemChange], rules: TouchpointRules | None = None) -> Recommender:
    base = Recommender(make_artifact(weights={"als": 0.5, "lightfm": 0.3, "popularity": 0.2}), "v1", rules)
    return base.with_catalog(base.catalog.with_changes(changes))


def test_a_change_sets_only_the_fields_it_names() -> None:
    before = Recommender(make_artifact(), "v1").catalog.item(2)
    after = live({"i2": ItemChange("i2", price=999.0)}).catalog.item(2)
    assert after.price == 999.0
    assert (after.title, after.category, after.brand, after.in_stock) == (
        before.title,
        before.category,
        before.brand,
        before.in_stock,
    )


def test_later_changes_merge_and_a_deletion_clears_what_came_before() -> None:
    first = ItemChange("x", title="Lamp", category="lamp", price=10.0)
    merged = first.merged(ItemChange("x", in_stock=False))
    assert (merged.title, merged.price, merged.in_stock) == ("Lamp", 10.0, False)
    deleted = merged.merged(ItemChange("x", deleted=True))
    assert deleted == ItemChange("x", deleted=True)
    assert deleted.merged(ItemChange("x", price=5.0)) == ItemChange("x", price=5.0)


def test_out_of_stock_and_deleted_items_are_never_recommended_by_default() -> None:
    model = live({})
    user = Query(user_id="u1", limit=5)
    first, second = ids(model.recommend(user))[:2]
    changed = live({first: ItemChange(first, in_stock=False), second: ItemChange(second, deleted=True)})
    answer = ids(changed.recommend(user))
    assert first not in answer and second not in answer
    anywhere = ids(changed.recommend(Query(user_id="u1", limit=40, filter=ANY_STOCK)))
    assert first in anywhere and second not in anywhere  # deleted means gone, whatever the filter
    assert second not in ids(changed.similar("i1", 40, ANY_STOCK, ()))


def test_price_filters_use_the_live_price() -> None:
    cheap = ItemFilter(in_stock_only=False, max_price=15.0)
    assert "i30" not in ids(live({}).recommend(Query(user_id="u1", limit=40, filter=cheap)))
    repriced = live({"i30": ItemChange("i30", price=12.0)})
    assert "i30" in ids(repriced.recommend(Query(user_id="u1", limit=40, filter=cheap)))


def test_a_new_item_is_recommended_by_its_content_with_its_own_reason() -> None:
    new = ItemChange("n1", title="Oak lamp", category="lamp", brand="brand0", price=40.0, tags=("oak",))
    model = live({"n1": new})
    assert model.catalog.size == len(CATEGORIES) + 1 and not model.catalog.item(model.index("n1")).trained
    lamps = ItemFilter(include_categories=frozenset({"lamp"}), in_stock_only=False)
    answer = model.recommend(Query(user_id="u1", limit=40, filter=lamps))
    found = [item for item in answer if item.item_id == "n1"]
    assert found and found[0].reasons[0].code is ReasonCode.NEW_IN_CATEGORY
    assert found[0].reasons[0].text == "New in lamp"
    # Same kind and content: a substitute of the lamps that share its brand and tag.
    assert "n1" in ids(model.similar("i8", 10, ANY_STOCK, (), Relation.SIMILAR))
    assert all(CATEGORIES[int(i[1:])] == "lamp" for i in ids(model.similar("n1", 5, ANY_STOCK, ())))


def test_a_change_without_a_category_to_an_unknown_item_adds_nothing() -> None:
    assert live({"ghost": ItemChange("ghost", price=1.0)}).find("ghost") is None


def test_a_touchpoint_can_keep_places_for_new_items() -> None:
    rules = TouchpointRules(touchpoints={"home_feed": TouchpointRule(new_items_per_page=2)})
    news = {f"n{k}": ItemChange(f"n{k}", title="New", category="sofa", price=math.nan) for k in range(3)}
    with_places = live(news, rules).recommend(Query(user_id="u1", touchpoint="home_feed", limit=5))
    without = live(news, rules).recommend(Query(user_id="u1", limit=5))
    assert sum(i.item_id.startswith("n") for i in with_places) >= 2
    assert len(with_places) == 5
    scores = [i.score for i in with_places]
    assert scores == sorted(scores, reverse=True)
    assert sum(i.item_id.startswith("n") for i in without) <= sum(
        i.item_id.startswith("n") for i in with_places
    )


def test_the_store_keeps_merged_changes_across_connections(tmp_path: Path) -> None:
    store = CatalogStore(tmp_path / "state.db")
    v1 = store.apply([ItemChange("a", title="A", category="lamp", tags=("x", "y"))])
    v2 = store.apply([ItemChange("a", price=3.5, in_stock=False), ItemChange("b", deleted=True)])
    assert v2 == v1 + 1
    store.close()
    again = CatalogStore(tmp_path / "state.db")
    version, changes = again.changes_since(-1)
    assert version == v2
    assert changes["a"] == ItemChange(
        "a", title="A", category="lamp", price=3.5, in_stock=False, tags=("x", "y")
    )
    assert changes["b"].deleted
    assert again.changes_since(v2) == (v2, {})
    assert set(again.changes_since(v1)[1]) == {"a", "b"}


def test_new_item_scores_follow_their_category_for_models_without_content() -> None:
    model = live({"n1": ItemChange("n1", title="New", category="filter")})
    ctx = model.context(Query(user_id="u1"), model.rules.default)
    _, terms = model.scorer.blend(ctx)
    filters = np.flatnonzero(CATEGORIES == "filter")
    expected = terms["popularity"].full()[filters].mean()
    assert model._candidates.category_means(terms["popularity"].full())[0] == pytest.approx(expected)
