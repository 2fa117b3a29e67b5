"""SimilarItems: the substitutes of an item (the same kind first, by content and co-view) or its
complements (other kinds, by co-purchase and what the catalog declares goes with it)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from models.recommend.catalog import Catalog, ItemIndex
from models.recommend.component import Component, Reason, ReasonCode
from models.recommend.explain import Explainer, ScoredItem
from models.recommend.mask import Masks
from models.recommend.query import ItemFilter
from models.recommend.relations import ItemRelations, Relation
from models.recommend.top import top
from models.recommend.touchpoints import TouchpointRule

# Among item-to-item similarities, each later one only breaks the ties of the one before.
TIE_BREAK = 1e-3


class UnknownItemError(KeyError):
    """SimilarItems was asked about an item the model does not know."""


class SimilarItems:
    """Immutable once built: answers SimilarItems for one model version and catalog."""

    def __init__(
        self,
        components: Mapping[str, Component],
        catalog: Catalog,
        items: ItemIndex,
        relations: ItemRelations,
        masks: Masks,
        explainer: Explainer,
        rule: TouchpointRule,
    ) -> None:
        self._catalog = catalog
        self._ids = catalog.ids.tolist()
        self._titles = catalog.titles.tolist()
        self._items = items
        self._relations = relations
        self._masks = masks
        self._explainer = explainer
        self._rule = rule
        self._similarity = sorted(
            (c for c in components.values() if type(c).similar is not Component.similar),
            key=lambda c: c.similarity_precedence,
        )

    def similar(
        self, item_id: str, limit: int, item_filter: ItemFilter, exclude: tuple[str, ...], relation: Relation
    ) -> list[ScoredItem]:
        """Substitutes (SIMILAR) or complements (COMPLEMENTARY) of an item, allowed by the filter."""
        anchor = self._items.get(item_id)
        if anchor is None:
            raise UnknownItemError(item_id)
        mask = self._masks.allowed(item_filter, exclude, self._rule)
        mask[anchor] = False
        categories = self._catalog.categories
        if relation is Relation.SIMILAR:
            scores = self._relations.substitutes(anchor, self.collaborative(anchor))
            allowed = np.flatnonzero(mask)
            best = top(allowed, scores[allowed], limit, categories, 0)
            reason = Reason(ReasonCode.SIMILAR_ITEM, f"Similar to '{self._titles[anchor]}'", item_id)
            return [ScoredItem(self._ids[i], s, (reason,)) for i, s in best]
        complements, goes_with = self._relations.complements(anchor)
        allowed = np.flatnonzero(mask & goes_with & ~self._relations.same_kind(anchor))
        best = top(allowed, complements[allowed], limit, categories, -(-limit // 2))
        reason_of = self._explainer.complement_reason
        return [ScoredItem(self._ids[i], s, (reason_of(anchor, i),)) for i, s in best]

    def collaborative(self, anchor: int) -> np.ndarray:
        """The item-to-item models in order of precedence: the first decides, each later one breaks ties."""
        scores: np.ndarray = np.zeros(self._catalog.size, dtype=np.float32)
        if anchor >= self._catalog.n_trained:
            return scores  # added since training: nobody has viewed it with anything yet
        for rank, component in enumerate(self._similarity):
            similarity = component.similar(anchor)
            if similarity is not None:
                scores[: similarity.size] += np.float32(TIE_BREAK**rank) * similarity
        return scores
