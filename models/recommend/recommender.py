"""Answering recommendation queries from a loaded artifact: score, filter, truncate, explain."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np

from models.recommend.artifact import RecommenderArtifact

# How many items of a user's history (the most confident) are searched for an explanation.
EXPLAIN_HISTORY = 50


class UnknownItemError(KeyError):
    """SimilarItems was asked about an item the model does not know."""


class ReasonCode(enum.Enum):
    SIMILAR_TO_HISTORY = "similar_to_history"
    SIMILAR_TO_SESSION = "similar_to_session"
    SIMILAR_ITEM = "similar_item"
    POPULAR_IN_SCENE = "popular_in_scene"
    POPULAR = "popular"


@dataclass(frozen=True)
class Reason:
    code: ReasonCode
    text: str
    related_item_id: str = ""


@dataclass(frozen=True)
class ScoredItem:
    item_id: str
    score: float
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class ItemFilter:
    include_categories: frozenset[str] = frozenset()
    exclude_categories: frozenset[str] = frozenset()
    min_price: float | None = None
    max_price: float | None = None
    in_stock_only: bool = True


@dataclass(frozen=True)
class Query:
    user_id: str = ""
    scene: str = ""
    touchpoint: str = ""
    limit: int = 10
    exclude_item_ids: tuple[str, ...] = ()
    recent_item_ids: tuple[str, ...] = ()
    context: dict[str, str] = field(default_factory=dict)
    filter: ItemFilter = field(default_factory=ItemFilter)


class Recommender:
    """Immutable once built, so one instance serves concurrent requests without locks."""

    def __init__(self, artifact: RecommenderArtifact, version: str) -> None:
        self.version = version
        self._a = artifact
        self._item_index = {item: i for i, item in enumerate(artifact.item_ids.tolist())}
        self._user_index = {user: u for u, user in enumerate(artifact.user_ids.tolist())}
        self._scene_index = {scene: s for s, scene in enumerate(artifact.scene_names.tolist())}
        self._categories = artifact.item_categories
        self._titles = artifact.item_titles.tolist()
        self._ids = artifact.item_ids.tolist()
        y = artifact.item_factors.astype(np.float64)
        self._y = artifact.item_factors
        norms = np.linalg.norm(y, axis=1, keepdims=True)
        self._y_unit = (y / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        k = y.shape[1]
        self._gram = y.T @ y + float(artifact.regularization) * np.eye(k)

    @property
    def n_items(self) -> int:
        return len(self._item_index)

    def knows_item(self, item_id: str) -> bool:
        return item_id in self._item_index

    def recommend(self, query: Query) -> list[ScoredItem]:
        user = self._user_index.get(query.user_id)
        recent = self._indices(query.recent_item_ids)
        mask = self._allowed(query.filter, query.exclude_item_ids)
        if user is None and not recent.size:
            return self._popular(query.scene, mask, query.limit)
        history, confidence = self._history(user)
        # What the user already has in front of them or behind them is not a discovery.
        mask[history] = False
        mask[recent] = False
        if recent.size:
            session_c = float(self._a.session_confidence)
            history = np.concatenate([history, recent])
            confidence = np.concatenate([confidence, np.full(recent.size, session_c, dtype=np.float32)])
            vector = self._fold(history, confidence)
        else:
            vector = self._a.user_factors[user]
        top = _top(self._y @ vector, mask, query.limit)
        explained_by = np.concatenate([recent, self._strongest(user)])
        return [ScoredItem(self._ids[i], float(s), (self._explain(i, explained_by, recent),)) for i, s in top]

    def similar(
        self, item_id: str, limit: int, item_filter: ItemFilter, exclude: tuple[str, ...]
    ) -> list[ScoredItem]:
        if item_id not in self._item_index:
            raise UnknownItemError(item_id)
        anchor = self._item_index[item_id]
        mask = self._allowed(item_filter, exclude)
        mask[anchor] = False
        title = self._titles[anchor]
        reason = Reason(
            ReasonCode.SIMILAR_ITEM, f"Often chosen by the customers who chose '{title}'", item_id
        )
        top = _top(self._y_unit @ self._y_unit[anchor], mask, limit)
        return [ScoredItem(self._ids[i], float(s), (reason,)) for i, s in top]

    def _indices(self, item_ids: tuple[str, ...]) -> np.ndarray:
        """Known items only, first occurrence kept, in the given order."""
        seen = dict.fromkeys(self._item_index[i] for i in item_ids if i in self._item_index)
        return np.fromiter(seen, dtype=np.int64, count=len(seen))

    def _allowed(self, item_filter: ItemFilter, exclude: tuple[str, ...]) -> np.ndarray:
        a = self._a
        mask = a.item_in_stock.copy() if item_filter.in_stock_only else np.ones(self.n_items, dtype=bool)
        if item_filter.include_categories:
            mask &= np.isin(self._categories, list(item_filter.include_categories))
        if item_filter.exclude_categories:
            mask &= ~np.isin(self._categories, list(item_filter.exclude_categories))
        # An item without a price cannot be shown to fit a price range.
        if item_filter.min_price is not None:
            mask &= a.item_prices >= item_filter.min_price
        if item_filter.max_price is not None:
            mask &= a.item_prices <= item_filter.max_price
        mask[self._indices(exclude)] = False
        return mask

    def _history(self, user: int | None) -> tuple[np.ndarray, np.ndarray]:
        if user is None:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        a = self._a
        lo, hi = a.history_indptr[user], a.history_indptr[user + 1]
        return a.history_indices[lo:hi].astype(np.int64), a.history_confidence[lo:hi]

    def _strongest(self, user: int | None) -> np.ndarray:
        items, confidence = self._history(user)
        return items[np.argsort(-confidence, kind="stable")[:EXPLAIN_HISTORY]]

    def _fold(self, items: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        """The ALS user vector for these confidences, solved exactly against the fixed item factors
        (what implicit's recalculate_user computes)."""
        y = self._y[items].astype(np.float64)
        c = confidence.astype(np.float64)
        a = self._gram + (y.T * (c - 1.0)) @ y
        b = y.T @ c
        return np.linalg.solve(a, b).astype(np.float32)

    def _popular(self, scene: str, mask: np.ndarray, limit: int) -> list[ScoredItem]:
        s = self._scene_index.get(scene)
        if s is not None:
            scores = self._a.scene_popularity[s]
            # Items never seen in the scene still rank, by overall popularity, after those that were.
            scores = np.where(scores > 0, 1.0 + scores, self._a.popularity)
            reason = Reason(ReasonCode.POPULAR_IN_SCENE, f"Popular in the '{scene}' scene")
        else:
            scores = self._a.popularity
            reason = Reason(ReasonCode.POPULAR, "Popular with customers")
        return [ScoredItem(self._ids[i], float(v), (reason,)) for i, v in _top(scores, mask, limit)]

    def _explain(self, item: int, history: np.ndarray, recent: np.ndarray) -> Reason:
        if not history.size:
            return Reason(ReasonCode.POPULAR, "Popular with customers")
        similarity = self._y_unit[history] @ self._y_unit[item]
        best = int(history[np.argmax(similarity)])
        related = self._ids[best]
        if best in set(recent.tolist()):
            return Reason(
                ReasonCode.SIMILAR_TO_SESSION, f"Because you looked at '{self._titles[best]}'", related
            )
        return Reason(
            ReasonCode.SIMILAR_TO_HISTORY,
            f"Customers who chose '{self._titles[best]}' also chose this",
            related,
        )


def _top(scores: np.ndarray, mask: np.ndarray, limit: int) -> list[tuple[int, float]]:
    """The `limit` best allowed items, best first; ties broken by item index for stable answers."""
    allowed = np.flatnonzero(mask)
    k = min(limit, allowed.size)
    if k <= 0:
        return []
    values = scores[allowed]
    if k < allowed.size:
        part = np.argpartition(-values, k - 1)[:k]
        allowed, values = allowed[part], values[part]
    order = np.lexsort((allowed, -values))
    return [(int(allowed[i]), float(values[i])) for i in order if math.isfinite(values[i])]
