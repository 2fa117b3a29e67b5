"""Who is asking and where: the query context of a request (the user and their history, the session,
scene, touchpoint, city and free context), in the indices the models know."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from models.recommend.artifact import RecommenderArtifact
from models.recommend.catalog import ItemIndex
from models.recommend.component import QueryContext
from models.recommend.query import Query
from models.recommend.touchpoints import TouchpointRule


class Contexts:
    """Immutable once built: makes the query context of each request of one model version."""

    def __init__(
        self, artifact: RecommenderArtifact, users: Mapping[str, int], items: ItemIndex, n_trained: int
    ) -> None:
        self._a = artifact
        self._users = users
        self._items = items
        self._n_trained = n_trained

    def of(self, query: Query, rule: TouchpointRule) -> QueryContext:
        """The query context of a request: user, history, session, scene, touchpoint, city, context."""
        user = self._users.get(query.user_id)
        history, weight, ordered = self._history(user)
        session = self._items.indices(query.recent_item_ids)
        session = session[session < self._n_trained]  # the models know the version's items only
        if session.size and history.size:
            session = session[~np.isin(session, history)]
        city = query.context.get("city") or (str(self._a.user_cities[user]) if user is not None else "")
        return QueryContext(
            user=user,
            history=history,
            history_weight=weight,
            session=session,
            session_weight=float(self._a.session_confidence),
            scene=query.scene or rule.default_scene,
            touchpoint=query.touchpoint,
            city=city,
            attributes=query.context,
            history_ordered=ordered,
            history_last_seen=self._last_seen(user),
        )

    def _last_seen(self, user: int | None) -> np.ndarray:
        """When a known user last touched each item of their history; empty when unknown."""
        times = self._a.history_last_seen
        if user is None or not times.size:
            return np.empty(0, dtype=np.float64)
        return times[self._a.history_indptr[user] : self._a.history_indptr[user + 1]]

    def _history(self, user: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(items, weights, ordered) of a known user's history; empty arrays otherwise."""
        if user is None:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32), np.empty(0, dtype=bool)
        a = self._a
        lo, hi = a.history_indptr[user], a.history_indptr[user + 1]
        return (
            a.history_indices[lo:hi].astype(np.int64),
            a.history_confidence[lo:hi],
            a.history_ordered[lo:hi],
        )
