"""Ranking metrics on hand-computed cases, the time-based holdout and its queries, top-k."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tests.support import event_store
from training import evaluate
from training.event_store import Part


def test_ranking_metrics_match_hand_computed_values() -> None:
    # Recommended 5, 1, 7; relevant {1, 7, 9}: hits at ranks 2 and 3.
    metrics = evaluate.ranking_metrics(np.array([5, 1, 7]), frozenset({1, 7, 9}), k=3)
    assert metrics["precision"] == pytest.approx(2 / 3)
    assert metrics["recall"] == pytest.approx(2 / 3)
    dcg = 1 / math.log2(3) + 1 / math.log2(4)
    ideal = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert metrics["ndcg"] == pytest.approx(dcg / ideal)
    assert metrics["map"] == pytest.approx((1 / 2 + 2 / 3) / 3)


def test_a_perfect_list_scores_one_and_a_miss_zero() -> None:
    perfect = evaluate.ranking_metrics(np.array([4, 2]), frozenset({2, 4}), k=2)
    assert perfect == {"precision": 1.0, "recall": 1.0, "ndcg": pytest.approx(1.0), "map": 1.0}
    miss = evaluate.ranking_metrics(np.array([0, 1]), frozenset({9}), k=2)
    assert miss["precision"] == miss["recall"] == miss["ndcg"] == miss["map"] == 0.0


def test_ideal_dcg_is_capped_at_k() -> None:
    # Five relevant items, k = 2, both recommended relevant: NDCG 1, recall 2/5.
    metrics = evaluate.ranking_metrics(np.array([0, 1]), frozenset(range(5)), k=2)
    assert metrics["ndcg"] == pytest.approx(1.0) and metrics["recall"] == pytest.approx(0.4)


def test_top_k_excludes_and_breaks_ties_by_index() -> None:
    scores = np.array([0.5, 0.9, 0.9, 0.1, 0.9])
    excluded = np.zeros(5, dtype=bool)
    excluded[2] = True
    assert evaluate.top_k(scores, excluded, 3).tolist() == [1, 4, 0]


def _events(rows: list[tuple[str, str, str, int]]) -> pd.DataFrame:
    columns = ["user_id", "item_id", "event_type", "timestamp"]
    return pd.DataFrame(rows, columns=columns).assign(scene="browse", touchpoint="feed")


def test_the_holdout_takes_each_users_latest_positives_and_everything_after_them() -> None:
    events = _events(
        [
            ("a", "i1", "click", 1), ("a", "i2", "order", 2), ("a", "i3", "view", 3), ("a", "i4", "click", 4),
            ("a", "i5", "click", 5), ("a", "i6", "view", 6),
            ("b", "i1", "click", 1),  # one positive only: stays whole in training
        ]
    )  # fmt: skip
    with event_store(events, fraction=0.5) as store:
        parts = store.engine.frame("SELECT user_id, item_id, part FROM events ORDER BY user_id, timestamp")
    # a has 4 positives; the latest ceil(0.5 * 4) = 2 are tested; training ends before the first of them.
    a, b = parts[parts["user_id"] == "a"], parts[parts["user_id"] == "b"]
    assert a[a["part"] == "test"]["item_id"].tolist() == ["i4", "i5"]
    assert a[a["part"] == "after"]["item_id"].tolist() == ["i6"]
    # Within a's training events the validation split again: 2 positives, the latest one.
    assert a[a["part"] == "validation"]["item_id"].tolist() == ["i2"]
    assert a[a["part"].isin(["train", "gap"])]["item_id"].tolist() == ["i1", "i3"]
    assert b["part"].tolist() == ["train"]


def test_queries_ask_for_test_items_not_seen_in_training() -> None:
    events = _events([("a", "i1", "click", 1), ("a", "i1", "click", 5), ("a", "i2", "click", 6)])
    with event_store(events, ["i0", "i1", "i2"], fraction=0.5) as store:
        rows = store.test_rows(Part.TEST_TRAIN)
    (query,) = evaluate.queries(rows.relevant)
    assert query.user_id == "a" and query.relevant == frozenset({2})
    visitors = evaluate.visitor_queries([query], rows.sessions, {"a": "shanghai"})
    assert visitors[0].user_id == "" and visitors[0].relevant == query.relevant
    assert visitors[0].session == ("i1",) and visitors[0].context == (("city", "shanghai"),)


def test_a_visitors_session_is_the_visit_before_the_query_not_older_history() -> None:
    """Production sessions are the current visit; sessions from weeks before made them look useless."""
    hour = 3600
    events = _events(
        [
            ("a", "old", "click", 0), ("a", "v1", "view", 100 * hour), ("a", "v2", "click", 101 * hour),
            ("a", "i2", "click", 102 * hour),
        ]
    )  # fmt: skip
    with event_store(events, ["old", "v1", "v2", "i2"], fraction=0.3) as store:
        rows = store.test_rows(Part.TEST_TRAIN)
    (query,) = evaluate.queries(rows.relevant)
    (visitor,) = evaluate.visitor_queries([query], rows.sessions)
    assert visitor.session == ("v1", "v2") and visitor.context == ()


def test_personalisation_is_one_minus_the_mean_overlap_of_top_lists() -> None:
    same = [np.array([0, 1, 2])] * 4
    assert evaluate.personalisation(same, 10) == pytest.approx(0.0)
    apart = [np.array([0, 1, 2]), np.array([3, 4, 5]), np.array([6, 7, 8])]
    assert evaluate.personalisation(apart, 10) == pytest.approx(1.0)
    # Two lists sharing 2 of 3 items: overlap 2/3 both ways.
    assert evaluate.personalisation([np.array([0, 1, 2]), np.array([0, 1, 3])], 10) == pytest.approx(1 / 3)
