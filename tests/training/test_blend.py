"""Fitting the blend: the grid, and a case whose answer is known (relevant items = one component's top)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models import versions
from models.recommend.artifact import RecommenderArtifact
from models.recommend.recommender import Query, Recommender
from training import blend, evaluate


def test_the_simplex_grid_holds_every_point_on_the_step_and_only_those() -> None:
    grid = blend.simplex_grid(3, 0.5)
    assert sorted(map(tuple, grid.tolist())) == sorted(
        [(1, 0, 0), (0, 1, 0), (0, 0, 1), (0.5, 0.5, 0), (0.5, 0, 0.5), (0, 0.5, 0.5)]
    )
    assert np.allclose(blend.simplex_grid(4, 0.1).sum(axis=1), 1.0) and len(blend.simplex_grid(4, 0.1)) == 286


@pytest.fixture(scope="module")
def recommender(model_dir: Path) -> Recommender:
    (name,) = versions.list_versions(model_dir)
    return Recommender(RecommenderArtifact.load(model_dir / name), name)


def queries_answered_by(
    recommender: Recommender, component: str, users: list[str]
) -> list[evaluate.EvalQuery]:
    """Queries whose relevant items are exactly what `component` alone ranks first for the user."""
    result = []
    for user in users:
        ctx = recommender.context(Query(user_id=user), recommender.rules.default)
        scores = recommender.scorer.components(ctx)[component]
        top = evaluate.top_k(scores, np.isin(np.arange(recommender.n_items), evaluate.seen(ctx)), 10)
        result.append(evaluate.EvalQuery(user, "", "", frozenset(top.tolist())))
    return result


@pytest.mark.parametrize("component", ["als", "lightfm"])
def test_the_blend_puts_its_weight_on_the_component_that_ranks_the_relevant_items(
    recommender: Recommender, component: str
) -> None:
    users = recommender._a.user_ids[:40].tolist()
    queries = queries_answered_by(recommender, component, users)
    fitted = blend.fit(recommender, queries, [], 10, {"als", "lightfm", "popularity"}, seed=0, tradeoff=0.0)
    assert fitted.weights[component] == pytest.approx(1.0)
    assert fitted.ndcg == pytest.approx(1.0)
    # Without visitor queries the visitors get the same weights.
    assert fitted.visitor_weights == fitted.weights
