"""Large-catalog retrieval: the blend's standardisation from the rows' moments is the full catalog's,
and answers from retrieved candidates are the answers of the whole catalog."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

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


def _neighbour_out_of_range(state: dict[str, np.ndarray], n_items: int) -> None:
    words = state["graph.data_level0"].view(np.uint32)
    words[0], words[1] = 1, n_items  # the first item's list: one neighbour, past the last item


def _list_longer_than_its_room(state: dict[str, np.ndarray], n_items: int) -> None:
    state["graph.data_level0"].view(np.uint32)[0] = int(state["graph.max_M0"]) + 1


def _label_out_of_range(state: dict[str, np.ndarray], n_items: int) -> None:
    at = int(state["graph.label_offset"])
    state["graph.data_level0"].view(np.uint8)[at : at + 8].view(np.uint64)[0] = n_items


def _entry_point_out_of_range(state: dict[str, np.ndarray], n_items: int) -> None:
    state["graph.enterpoint_node"] = np.asarray(n_items)


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (_neighbour_out_of_range, "neighbour list at level 0"),
        (_list_longer_than_its_room, "neighbour list at level 0"),
        (_label_out_of_range, "label names an item"),
        (_entry_point_out_of_range, "entry point"),
    ],
)
def test_a_graph_with_a_link_or_label_out_of_range_is_refused_before_hnswlib_reads_it(
    artifact: RecommenderArtifact, indexes: dict[str, np.ndarray], corrupt: Any, message: str
) -> None:
    stored = {name: value.copy() for name, value in indexes.items()}
    corrupt(stored, len(artifact.item_ids))
    with pytest.raises(ArtifactError, match=message):
        Recommender(dataclasses.replace(artifact, retrieval=stored), "broken")
