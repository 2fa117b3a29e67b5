"""Ranking metrics on the time-based holdout, computed through the serving code's own scoring.

The holdout itself is split in SQL (training/event_store.py). Each (user, scene, touchpoint) of the test
events is one query whose relevant items are the test items the user had not touched in training;
recommendations exclude the user's training items.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.recommend import content
from models.recommend.recommender import ItemFilter, Query, Recommender, Relation
from models.recommend.scoring import QueryContext

METRICS = ("precision", "recall", "ndcg", "map")
MAX_EVAL_CELLS = 200_000_000  # queries × items scored per evaluation at most


@dataclass(frozen=True)
class EvalQuery:
    user_id: str  # "" for a visitor
    scene: str
    touchpoint: str
    relevant: frozenset[int]  # item indices
    session: tuple[str, ...] = ()  # items the visitor touched in the session
    context: tuple[tuple[str, str], ...] = ()  # the request's context, e.g. (("city", "shanghai"),)


def queries(relevant: pd.DataFrame) -> list[EvalQuery]:
    """One query per (user, scene, touchpoint) of the test rows (training/event_store.py TestRows)."""
    result = []
    for (user, scene, touchpoint), rows in relevant.groupby(["user_id", "scene", "touchpoint"], sort=True):
        codes = frozenset(int(c) for c in rows["item_code"].tolist())
        result.append(EvalQuery(str(user), str(scene), str(touchpoint), codes))
    return result


def visitor_queries(
    queries_: list[EvalQuery], sessions: pd.DataFrame, cities: dict[str, str] | None = None
) -> list[EvalQuery]:
    """The same queries asked as production asks them for a visitor the model does not know: the
    session is what the user touched in this visit (the latest items of the two hours before the query,
    event_store.SESSION_SECONDS), and the context carries the user's city."""
    by_query: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    ordered = sessions.sort_values(
        ["user_id", "scene", "touchpoint", "recent"], ascending=[True, True, True, False]
    )
    for user, scene, touchpoint, item in zip(
        ordered["user_id"], ordered["scene"], ordered["touchpoint"], ordered["item_id"], strict=True
    ):
        by_query[(str(user), str(scene), str(touchpoint))].append(str(item))
    result = []
    for q in queries_:
        city = (cities or {}).get(q.user_id, "")
        context = (("city", city),) if city else ()
        session = tuple(by_query.get((q.user_id, q.scene, q.touchpoint), ()))
        result.append(EvalQuery("", q.scene, q.touchpoint, q.relevant, session, context))
    return result


def sample(queries_: list[EvalQuery], limit: int, seed: int = 0) -> list[EvalQuery]:
    if len(queries_) <= limit:
        return queries_
    chosen = np.random.default_rng(seed).choice(len(queries_), size=max(limit, 1), replace=False)
    return [queries_[i] for i in sorted(chosen)]


def top_k(scores: np.ndarray, excluded: np.ndarray, k: int) -> np.ndarray:
    scores = scores.astype(np.float64, copy=True)
    scores[excluded] = -np.inf
    k = min(k, scores.size)
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.lexsort((part, -scores[part]))]


def ranking_metrics(top: np.ndarray, relevant: frozenset[int], k: int) -> dict[str, float]:
    hits = np.array([item in relevant for item in top[:k]], dtype=float)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = discounts[: min(len(relevant), k)].sum()
    precision_at = np.cumsum(hits) / np.arange(1, hits.size + 1)
    return {
        "precision": hits.sum() / k,
        "recall": hits.sum() / len(relevant),
        "ndcg": float((hits * discounts[: hits.size]).sum() / ideal),
        "map": float((precision_at * hits).sum() / min(len(relevant), k)),
    }


def query_context(recommender: Recommender, query: EvalQuery) -> QueryContext:
    """The context the service would build for this user, scene and touchpoint."""
    request = Query(
        user_id=query.user_id,
        scene=query.scene,
        touchpoint=query.touchpoint,
        recent_item_ids=query.session,
        context=dict(query.context),
    )
    return recommender.context(request, recommender.rules.default)


def seen(ctx: QueryContext) -> np.ndarray:
    """What a query must not be recommended: the user's history and the session's items."""
    return np.concatenate([ctx.history, ctx.session])


def scores_for(
    recommender: Recommender, query: EvalQuery, component: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, items to exclude) of a query, from the blend or from one component alone."""
    ctx = query_context(recommender, query)
    if component is None:
        scores, _ = recommender.scorer.blend(ctx)
    else:
        parts = recommender.scorer.components(ctx)
        scores = parts.get(component, parts["popularity"])
    return scores, seen(ctx)


def evaluate(
    recommender: Recommender, queries_: list[EvalQuery], k: int = 10, component: str | None = None
) -> dict[str, Any]:
    """Metrics overall and per scene and per touchpoint, and catalog coverage. On a large catalog a
    seeded sample of the queries is scored (the same sample for every model), to bound the time."""
    queries_ = sample(queries_, MAX_EVAL_CELLS // max(recommender.n_items, 1))
    per_query, recommended, lists = [], set(), []
    for query in queries_:
        scores, excluded = scores_for(recommender, query, component)
        top = top_k(scores, excluded, k)
        recommended.update(top.tolist())
        lists.append(top)
        per_query.append(ranking_metrics(top, query.relevant, k))
    result = summarise(queries_, per_query, len(recommended) / max(recommender.n_items, 1))
    result["overall"]["personalisation"] = personalisation(lists, recommender.n_items)
    return result


RELATION_ANCHORS = 500  # items whose similar items are judged (seeded sample)


def item_relations(
    recommender: Recommender, categories: np.ndarray, tags: np.ndarray, k: int, seed: int = 0
) -> dict[str, float]:
    """How SimilarItems keeps to kinds, over a sample of items: the share of substitutes in the item's
    category and sharing one of its tags (MovieLens: genres), against the item-to-item models alone, and
    the share of complements in another category."""
    anchors = np.random.default_rng(seed).permutation(recommender.n_items)[:RELATION_ANCHORS]
    tag_sets = [set(content.split_tags(str(t))) for t in tags]
    everything = ItemFilter(in_stock_only=False)
    counts: dict[str, list[float]] = defaultdict(list)
    for anchor in anchors.tolist():
        item_id = recommender.item_id(anchor)
        substitutes = [recommender.index(s.item_id) for s in recommender.similar(item_id, k, everything, ())]
        alone = recommender.collaborative_similarity(anchor)
        alone[anchor] = -np.inf
        before = np.argsort(-alone, kind="stable")[:k].tolist()
        complements = recommender.similar(item_id, k, everything, (), Relation.COMPLEMENTARY)
        for name, found in (("substitutes", substitutes), ("item-to-item alone", before)):
            counts[f"{name} same category"] += [float(categories[i] == categories[anchor]) for i in found]
            if tag_sets[anchor]:
                counts[f"{name} shared tag"] += [float(bool(tag_sets[i] & tag_sets[anchor])) for i in found]
        counts["complements other category"] += [
            float(categories[recommender.index(c.item_id)] != categories[anchor]) for c in complements
        ]
    return {name: float(np.mean(values)) for name, values in counts.items() if values} | {
        "anchors": float(anchors.size)
    }


PERSONALISATION_LISTS = 300  # lists compared pairwise at most (seeded sample)


def personalisation(lists: list[np.ndarray], n_items: int, seed: int = 0) -> float:
    """1 − the mean overlap of two answers' top lists (|A ∩ B| / k) over pairs of queries: 0 when every
    query gets the same list, 1 when no two share an item."""
    if len(lists) < 2:
        return math.nan
    if len(lists) > PERSONALISATION_LISTS:
        chosen = np.random.default_rng(seed).choice(len(lists), PERSONALISATION_LISTS, replace=False)
        lists = [lists[i] for i in sorted(chosen)]
    k = max(len(top) for top in lists)
    hits = np.zeros((len(lists), n_items), dtype=np.float32)
    for row, top in enumerate(lists):
        hits[row, top] = 1.0
    shared = hits @ hits.T
    pairs = len(lists) * (len(lists) - 1)
    return float(1.0 - (shared.sum() - np.trace(shared)) / (pairs * k))


def summarise(
    queries_: list[EvalQuery], per_query: list[dict[str, float]], coverage: float
) -> dict[str, Any]:
    def mean(rows: list[dict[str, float]]) -> dict[str, float]:
        return {m: float(np.mean([r[m] for r in rows])) if rows else math.nan for m in METRICS} | {
            "queries": len(rows)
        }

    groups: dict[str, dict[str, list]] = {"scene": defaultdict(list), "touchpoint": defaultdict(list)}
    for query, row in zip(queries_, per_query, strict=True):
        groups["scene"][query.scene or "(none)"].append(row)
        groups["touchpoint"][query.touchpoint or "(none)"].append(row)
    return {
        "overall": mean(per_query) | {"coverage": coverage},
        "per_scene": {name: mean(rows) for name, rows in sorted(groups["scene"].items())},
        "per_touchpoint": {name: mean(rows) for name, rows in sorted(groups["touchpoint"].items())},
    }
