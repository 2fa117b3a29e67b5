"""Places an answer keeps for items the blend alone would not bring: items added since training (a
touchpoint's `new_items_per_page`) and what goes with the items of the session (`complements_per_page`:
a visitor looking at purifiers is shown their filters and installation)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from models.recommend.candidates import Scored
from models.recommend.component import QueryContext
from models.recommend.relations import ItemRelations
from models.recommend.scoring import blend_at
from models.recommend.touchpoints import TouchpointRule

Ranked = list[tuple[int, float]]  # (item index, score), best first
# The session's newest items whose complements an answer keeps places for (each costs a pass over the
# catalog's arrays).
SESSION_ANCHORS = 2


class Places:
    """Immutable once built: keeps the places of each answer of one model version and catalog."""

    def __init__(self, relations: ItemRelations, categories: np.ndarray, n_trained: int) -> None:
        self._relations = relations
        self._categories = categories
        self._n_trained = n_trained

    def kept(
        self,
        top: Ranked,
        scored: Scored,
        ctx: QueryContext,
        mask: np.ndarray,
        rule: TouchpointRule,
        limit: int,
    ) -> tuple[Ranked, dict[int, int]]:
        """`top` with the places the rule keeps, for new items and then for what goes with the session
        (new items keep theirs); and those complements: item -> the session item it goes with."""
        is_new = self._n_trained.__le__
        top = keep(top, scored.new_ranked, rule.new_items_per_page, is_new)
        complements = self._session_complements(ctx, mask, min(rule.complements_per_page, limit // 3))
        if complements:
            scores = blend_at(scored.terms, np.array(list(complements))).tolist()
            ranked = list(zip(complements, scores, strict=True))
            top = keep(top, ranked, len(complements), complements.__contains__, is_new)
        return top, complements

    def _session_complements(self, ctx: QueryContext, mask: np.ndarray, count: int) -> dict[int, int]:
        """Up to `count` items that go with the session's newest items, allowed by `mask` (one kind of
        complement at a time, each session item in turn): item -> the session item it goes with."""
        if count <= 0 or not ctx.session.size:
            return {}
        anchors = ctx.session[::-1][:SESSION_ANCHORS].tolist()
        per_anchor = []
        for anchor in anchors:
            items, _ = self._relations.goes_with(anchor, ctx.city)
            items = items[mask[items] & (items < self._n_trained)]
            _, first = np.unique(self._categories[items], return_index=True)
            per_anchor.append(items[np.sort(first)].tolist())  # each kind's best, in the order of the best
        picked = round_robin(per_anchor, count)
        return {
            item: next(a for a, items in zip(anchors, per_anchor, strict=True) if item in items)
            for item in picked
        }


def keep(
    top: Ranked,
    candidates: Ranked,
    places: int,
    counted: Callable[[int], bool],
    protected: Callable[[int], bool] = lambda item: False,
) -> Ranked:
    """`top` with at least `places` items for which `counted` holds (or as many as `candidates` has):
    the first `candidates` (in the caller's order of preference) not in it take the places of its
    weakest items that are neither counted nor `protected`; the answer stays ordered by score."""
    missing = min(places, len(top)) - sum(counted(i) for i, _ in top)
    if missing <= 0:
        return top
    chosen = {i for i, _ in top}
    added = [entry for entry in candidates if entry[0] not in chosen][:missing]
    if not added:
        return top
    kept = [entry for entry in top if counted(entry[0]) or protected(entry[0])]
    others = [entry for entry in top if not (counted(entry[0]) or protected(entry[0]))]
    others = others[: max(len(top) - len(kept) - len(added), 0)]
    return sorted(others + kept + added, key=lambda entry: (-entry[1], entry[0]))


def round_robin(per_anchor: list[list[int]], places: int) -> list[int]:
    """Up to `places` distinct items taken in turn from each anchor's list (its best first), so that
    every item of a session gets its best complement before any gets its second."""
    picked: dict[int, None] = {}
    depth = max((len(items) for items in per_anchor), default=0)
    for level in range(depth):
        for items in per_anchor:
            if level < len(items) and len(picked) < places:
                picked.setdefault(items[level])
    return list(picked)
