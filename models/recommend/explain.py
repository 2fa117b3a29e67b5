"""Why each item of an answer was chosen: the component that led to it (a personal one names the closest
item of the history or session, and only one related to the item), new items' category, and what a
complement goes with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from models.recommend.catalog import Catalog
from models.recommend.component import Component, QueryContext, Reason, ReasonCode
from models.recommend.components import FALLBACK
from models.recommend.relations import ItemRelations
from models.recommend.scoring import NOVELTY, Term

# How many items of a user's history (the most weighted) are searched for an explanation.
EXPLAIN_HISTORY = 50


@dataclass(frozen=True)
class ScoredItem:
    item_id: str
    score: float
    reasons: tuple[Reason, ...]


class Explainer:
    """Immutable once built: gives the reasons of the answers of one model version and catalog."""

    def __init__(
        self,
        components: Mapping[str, Component],
        catalog: Catalog,
        relations: ItemRelations,
    ) -> None:
        self._components = components
        self._fallback = components[FALLBACK]
        self._catalog = catalog
        self._ids = catalog.ids.tolist()
        self._titles = catalog.titles.tolist()
        self._relations = relations

    def answer(
        self,
        top: list[tuple[int, float]],
        ctx: QueryContext,
        terms: dict[str, Term],
        complements: dict[int, int],
    ) -> list[ScoredItem]:
        """The answer: each item of `top` with its score and reasons; a complement of the session says
        first what it goes with (`complements`: item -> the session item)."""
        items = np.array([i for i, _ in top], dtype=np.int64)
        reasons = self._explain(items, ctx, terms)
        for n, item in enumerate(items.tolist()):
            if item in complements:
                reasons[n] = (self.complement_reason(complements[item], item), *reasons[n][1:])
        return [ScoredItem(self._ids[i], s, r) for (i, s), r in zip(top, reasons, strict=True)]

    def complement_reason(self, anchor: int, item: int) -> Reason:
        anchor_id, title = self._ids[anchor], self._titles[anchor]
        # The item's own entries only: a reason is asked for every complement shown, on every call.
        if self._relations.compatibility.declared(anchor, items=np.array([item]))[0] > 0:
            return Reason(ReasonCode.GOES_WITH, f"Goes with '{title}'", anchor_id)
        if self._relations.co_purchase(anchor)[item] > 0:
            return Reason(ReasonCode.BOUGHT_TOGETHER, f"Often bought together with '{title}'", anchor_id)
        if self._relations.category_affinity(anchor)[item] > 0:
            kinds = self._relations.category_name(anchor), self._relations.category_name(item)
            return Reason(
                ReasonCode.BOUGHT_TOGETHER, "Customers who buy {} also buy {}".format(*kinds), anchor_id
            )
        return Reason(ReasonCode.POPULAR, "Popular")

    def _explain(
        self, items: np.ndarray, ctx: QueryContext, terms: dict[str, Term]
    ) -> list[tuple[Reason, ...]]:
        """The reasons of each recommended item: what led to it (the component that contributed most:
        a personal one names the closest history or session item, another gives its own reason, the
        fallback's reason when neither can), then any reason another component adds (fits the scene)."""
        components = self._components
        is_new = items >= self._catalog.n_trained
        new = is_new.tolist()
        leaders_of_trained = iter(leading(items[~is_new], terms, components))
        leaders = [FALLBACK if n else next(leaders_of_trained) for n in new]
        personal = self._because_of(items, ctx, leaders)
        result: list[tuple[Reason, ...]] = []
        for n, item in enumerate(items.tolist()):
            if new[n]:
                category = str(self._catalog.categories[item]).replace("_", " ")
                result.append((Reason(ReasonCode.NEW_IN_CATEGORY, f"New in {category}"),))
                continue
            leader = components[leaders[n]]
            because = personal[n]
            primary: Reason | None = because if leader.personal else leader.reason(ctx)
            if primary is None:
                leader, primary = self._fallback, self._fallback.reason(ctx)
            assert primary is not None  # the fallback always has a reason
            extras = [
                extra
                for component in components.values()
                if component is not leader and (extra := component.extra_reason(item, ctx)) is not None
            ]
            result.append((primary, *extras))
        return result

    def _because_of(self, items: np.ndarray, ctx: QueryContext, leading: list[str]) -> list[Reason | None]:
        """For each item led by a personal component, the session or history item closest to it by that
        component."""
        result: list[Reason | None] = [None] * items.size
        personal_names = [name for name, c in self._components.items() if c.personal]
        personal = np.array([n for n, name in enumerate(leading) if name in personal_names], dtype=np.int64)
        if not personal.size:
            return result
        strongest = np.argsort(-ctx.history_weight, kind="stable")[:EXPLAIN_HISTORY]
        candidates = np.concatenate([ctx.session, ctx.history[strongest]])
        was_ordered = np.concatenate([np.zeros(ctx.session.size, dtype=bool), ctx.history_ordered[strongest]])
        if not candidates.size:
            return result
        targets = items[personal]
        led_by = np.array([leading[n] for n in personal.tolist()])
        closeness = np.empty((candidates.size, targets.size))
        for name in personal_names:
            led = led_by == name
            if led.any():
                closeness[:, led] = self._components[name].closeness(candidates, targets[led])
        closeness[candidates[:, None] == targets[None, :]] = -np.inf  # an item does not explain itself
        # "Because you looked at" names only an item of the target's kind or one it goes with (no purifier
        # for a lamp); a history item's "customers who chose it also chose this" is the model's own word.
        looked_at = candidates[: ctx.session.size]
        if looked_at.size:
            related = self._relations.compatibility.related(looked_at, targets)
            closeness[: looked_at.size][~related] = -np.inf
        bests = closeness.argmax(axis=0)
        explained = np.isfinite(closeness[bests, np.arange(targets.size)])
        for n, best, found in zip(personal.tolist(), bests.tolist(), explained.tolist(), strict=True):
            if found:
                result[n] = self._history_reason(candidates[best], best < ctx.session.size, was_ordered[best])
        return result

    def _history_reason(self, item: int, in_session: bool, ordered: bool) -> Reason:
        """What a personal component's closest item of the session or history says of an item it led."""
        related, title = self._ids[item], self._titles[item]
        if in_session:
            return Reason(ReasonCode.SIMILAR_TO_SESSION, f"Because you looked at '{title}'", related)
        if ordered:
            return Reason(ReasonCode.BOUGHT_TOGETHER, f"Often bought together with '{title}'", related)
        text = f"Customers who chose '{title}' also chose this"
        return Reason(ReasonCode.SIMILAR_TO_HISTORY, text, related)


def leading(items: np.ndarray, terms: dict[str, Term], components: Mapping[str, Component]) -> list[str]:
    """Per item, the component that led to it: the user's own history and session (the personal
    components together) when they gave more than any other single component, else that one."""
    names = [name for name in terms if name != NOVELTY]
    if not items.size:
        return []
    contributions = np.stack([terms[name].at(items) for name in names])
    personal = np.array([components[name].personal for name in names])
    if not personal.any() or personal.all():
        chosen = contributions.argmax(axis=0)
    else:
        # Ties go to the first component in blend order, within the personal ones and the others.
        own, others = contributions[personal], contributions[~personal]
        by_history = own.sum(axis=0) > others.max(axis=0)
        chosen = np.where(
            by_history,
            np.flatnonzero(personal)[own.argmax(axis=0)],
            np.flatnonzero(~personal)[others.argmax(axis=0)],
        )
    return [names[c] for c in chosen.tolist()]
