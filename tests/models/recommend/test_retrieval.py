"""Large-catalog retrieval: the blend's standardisation from the rows' moments is the full catalog's,
and answers from retrieved candidates are the answers of the whole catalog."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from models import versions
from models.recommend import retrieval
from models.recommend.artifact import RecommenderArtifact
from models.recommend.component import ArtifactError
from models.recommend.recommender import ItemFilter, Query, Recommender


@pytest.fixture(scope="module")
def artifact(model_dir: Path) -> RecommenderArtifact:
    (version,) = versions.list_versions(model_dir)
    return RecommenderArtifact.load(model_dir / version)


@pytest.fixture(scope="module")
def indexes(artifact: RecommenderArtifact) -> dict[str, np.ndarray]:
    """The demo version's retrieval arrays, built whatever its size."""
    return retrieval.build(artifact.components, n_items=retrieval.MIN_ITEMS)


@pytest.fixture(scope="module")
def indexed(artifact: RecommenderArtifact, indexes: dict[str, np.ndarray]) -> Recommender:
    """The demo version served as a large catalog would be."""
    return Recommender(dataclasses.replace(artifact, retrieval=indexes), "indexed")


def test_moments_give_the_mean_and_deviation_of_the_whole_catalogs_scores() -> None:
    rows = np.random.default_rng(0).normal(size=(5000, 8)).astype(np.float32) + 3.0
    query = np.random.default_rng(1).normal(size=8).astype(np.float32)
    mean, std = retrieval.Moments.of(rows, chunk=700).mean_std(query)
    scores = rows.astype(np.float64) @ query
    assert mean == pytest.approx(scores.mean(), rel=1e-9) and std == pytest.approx(scores.std(), rel=1e-9)


def test_a_catalog_under_the_threshold_gets_no_index(artifact: RecommenderArtifact) -> None:
    assert retrieval.build(artifact.components, len(artifact.item_ids)) == {}
    small = Recommender(artifact, "small")
    assert small.scorer.retrieve(small.context(Query(user_id="u"), small.rules.default), 50) is None


def test_answers_from_candidates_are_the_whole_catalogs(
    artifact: RecommenderArtifact, indexed: Recommender
) -> None:
    exact = Recommender(artifact, "exact")
    users = [*artifact.user_ids[:: max(1, len(artifact.user_ids) // 60)].tolist(), "visitor"]
    asked = same = retrieved = 0
    for user in users:
        for scene in ("", "browse", "after_order"):
            recent = (str(artifact.item_ids[3]),) if scene == "browse" else ()
            query = Query(user_id=user, scene=scene, limit=10, recent_item_ids=recent)
            ctx = indexed.context(query, indexed.rules.default)
            # (a blend that weighs EASE, not linear in a small item matrix, is scored in full)
            retrieved += indexed.scorer.retrieve(ctx, 200) is not None
            got, want = indexed.recommend(query), exact.recommend(query)
            assert [i.score for i in got] == pytest.approx([i.score for i in want], abs=1e-4)
            asked, same = asked + 1, same + ([i.item_id for i in got] == [i.item_id for i in want])
    assert same == asked, f"{asked - same} of {asked} answers differ"
    assert retrieved > asked // 2


def test_filters_narrower_than_the_candidates_fall_back_to_the_whole_catalog(
    artifact: RecommenderArtifact, indexed: Recommender
) -> None:
    exact = Recommender(artifact, "exact")
    rare = str(np.unique(artifact.item_categories, return_counts=True)[0][0])
    query = Query(
        user_id=str(artifact.user_ids[0]), limit=10, filter=ItemFilter(include_categories=frozenset({rare}))
    )
    assert [i.item_id for i in indexed.recommend(query)] == [i.item_id for i in exact.recommend(query)]


def test_the_graph_is_saved_as_arrays_and_answers_the_same_after_loading(
    artifact: RecommenderArtifact, indexes: dict[str, np.ndarray], indexed: Recommender, tmp_path: Path
) -> None:
    dataclasses.replace(artifact, retrieval=indexes).save(tmp_path)
    loaded = RecommenderArtifact.load(tmp_path)  # np.load(allow_pickle=False): no object arrays in it
    assert sorted(loaded.retrieval) == sorted(indexes)
    reloaded = Recommender(loaded, "reloaded")
    for user in artifact.user_ids[:20].tolist():
        query = Query(user_id=user, limit=10)
        assert reloaded.recommend(query) == indexed.recommend(query)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"graph.cur_element_count": np.asarray(3)}, "cur_element_count is 3"),
        ({"graph.dim": np.asarray(2)}, "dim is 2"),
        ({"graph.space": np.asarray("ip")}, "space is ip"),
        ({"graph.data_level0": np.zeros(10, dtype=np.int8)}, "data_level0 is 10"),
        ({"graph.link_lists": None}, "link_lists"),
        ({"columns": np.array(["als"])}, "linear components are"),
        ({"index": np.zeros(8, dtype=np.uint8)}, "train it again"),
    ],
)
def test_a_graph_that_does_not_fit_the_version_is_refused(
    artifact: RecommenderArtifact, indexes: dict[str, np.ndarray], change: dict, message: str
) -> None:
    stored = {**indexes, **change}
    stored = {name: value for name, value in stored.items() if value is not None}
    with pytest.raises(ArtifactError, match=message):
        Recommender(dataclasses.replace(artifact, retrieval=stored), "broken")
