"""A Recommend query is one pass through its stages: Recommender.recommend runs each stage module once,
in order, and no stage calls back into the orchestrator or into a stage before or after it. The stages
themselves: item ids read as indices, the per-category cap, the once-only history."""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

import numpy as np
import pytest

from models.recommend.catalog import ItemIndex
from models.recommend.mask import Masks
from models.recommend.recommender import ItemFilter, Query, Recommender
from models.recommend.top import top
from models.recommend.touchpoints import TouchpointRule, TouchpointRules
from tests.support import CATEGORIES, make_artifact

PACKAGE = "models.recommend."
STAGES = ["query", "context", "mask", "candidates", "top", "places", "explain"]


@pytest.fixture(scope="module")
def model() -> Recommender:
    rules = TouchpointRules(touchpoints={"home_feed": TouchpointRule(max_per_category=2)})
    return Recommender(make_artifact(weights={"als": 0.5, "popularity": 0.5}), "v1", rules)


def stages_entered(model: Recommender, query: Query) -> list[str]:
    """The orchestrator and the stage modules whose Python code answering `query` runs, in order, a
    module named again only when the walk comes back to it from another of them. The shared pieces
    (the catalog's index, the blend's arithmetic, the components, the relations) are not stages: a stage
    calls them, and they call no stage."""
    entered: list[str] = []
    watched = {PACKAGE + name for name in ("recommender", *STAGES)}

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        module = str(frame.f_globals.get("__name__", ""))
        if event == "call" and module in watched:
            name = module.removeprefix(PACKAGE)
            if not entered or entered[-1] != name:
                entered.append(name)

    sys.setprofile(profile)
    try:
        model.recommend(query)
    finally:
        sys.setprofile(None)
    return entered


@pytest.mark.parametrize(
    "query",
    [
        Query(user_id="u2", limit=5),
        Query(recent_item_ids=("i1", "i30"), touchpoint="home_feed", context={"city": "Shanghai"}),
        Query(user_id="u0", recent_item_ids=("i4",), filter=ItemFilter(exclude_categories=frozenset({"x"}))),
    ],
)
def test_a_query_runs_each_stage_once_in_order(model: Recommender, query: Query) -> None:
    assert stages_entered(model, query) == ["recommender", *STAGES]


def test_item_ids_become_known_indices_once_each_in_order() -> None:
    index = ItemIndex(["a", "b", "c"])
    assert index.indices(("c", "x", "a", "c", "b")).tolist() == [2, 0, 1]
    assert index.indices(()).dtype == np.int64
    assert index.get("x") is None and "b" in index and index["b"] == 1


def test_the_cap_per_category_gives_way_to_other_kinds_and_fills_only_when_nothing_else_does() -> None:
    categories = np.array(["lamp", "lamp", "lamp", "sofa"])
    allowed, scores = np.arange(4), np.array([4.0, 3.0, 2.0, 1.0])
    assert top(allowed, scores, 3, categories, 2) == [(0, 4.0), (1, 3.0), (3, 1.0)]
    assert top(allowed, scores, 4, categories, 1) == [(0, 4.0), (3, 1.0), (1, 3.0), (2, 2.0)]
    assert top(allowed, scores, 2, categories, 0) == [(0, 4.0), (1, 3.0)]


def test_what_was_ordered_once_and_for_all_is_not_shown_again_and_a_repeatable_kind_is(
    model: Recommender,
) -> None:
    query = Query(user_id="u2", filter=ItemFilter(in_stock_only=False))
    ctx = model.context(query, model.rules.default)
    ordered = ctx.history[ctx.history_ordered]
    assert ordered.size, "the fixture's user ordered something"
    masks = Masks(model.catalog, model.rules, ItemIndex(model.catalog.ids.tolist()))
    assert not masks.shown(query, ctx, TouchpointRule())[ordered].any()
    every_kind = frozenset(CATEGORIES.tolist())
    assert masks.shown(query, ctx, TouchpointRule(repeatable_categories=every_kind))[ordered].all()
