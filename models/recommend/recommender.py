"""Answering recommendation queries, one stage after another, each a module of its own:

    query.py       what the request means: its values spelled as the models know them, warnings
    context.py     who is asking and where: user, history, session, scene, touchpoint, city
    mask.py        what may be shown: live, in stock, filters, the touchpoint's rules, exclusions
    candidates.py  what to choose from and its blended scores (retrieval on large catalogs, new items)
    top.py         the best of them, with the touchpoint's cap per category
    places.py      places kept for new items and for what goes with the session
    explain.py     why each item was chosen

SimilarItems (similar.py) uses the mask, top and the complements' reasons."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from models.recommend import content
from models.recommend.artifact import RecommenderArtifact
from models.recommend.candidates import Candidates
from models.recommend.catalog import Catalog, ItemIndex
from models.recommend.component import QueryContext, Reason, ReasonCode
from models.recommend.context import Contexts
from models.recommend.explain import Explainer, ScoredItem
from models.recommend.mask import Masks
from models.recommend.places import Places
from models.recommend.query import DEFAULT_LIMIT, ItemFilter, Query, RequestWarning, Vocabulary, WarningCode
from models.recommend.relations import ItemRelations, Relation
from models.recommend.scoring import Scorer
from models.recommend.similar import SimilarItems, UnknownItemError
from models.recommend.top import top
from models.recommend.touchpoints import TouchpointRule, TouchpointRules

__all__ = [
    "DEFAULT_LIMIT",
    "ItemFilter",
    "ModelDescription",
    "Query",
    "Reason",
    "ReasonCode",
    "Recommender",
    "Relation",
    "RequestWarning",
    "ScoredItem",
    "UnknownItemError",
    "WarningCode",
]


@dataclass(frozen=True)
class ModelDescription:
    version: str
    scenes: list[str]
    touchpoints: list[str]
    categories: list[str]
    item_count: int
    user_count: int
    components: list[str]
    k: int
    holdout: dict[str, dict[str, float]]  # model -> metric -> value, from the training job
    event_types: list[str]  # the event types the training job weighed


class Recommender:
    """Immutable once built, so one instance serves concurrent requests without locks: every stage's
    per-version state is made here, once."""

    def __init__(
        self,
        artifact: RecommenderArtifact,
        version: str,
        rules: TouchpointRules | None = None,
        manifest: Mapping[str, Any] | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        """`catalog`: the live catalog (the version's items with the storefront's changes since); by
        default the version's own."""
        self.version = version
        self._manifest = dict(manifest or {})
        # The event types training weighed (its --event-weight): the events the service may record.
        self.event_types = tuple(
            self._manifest.get("parameters", {}).get("model", {}).get("event_weights", {})
        )
        self.scorer = Scorer(artifact)
        self.rules = rules or TouchpointRules()
        self._a = artifact
        self.catalog = c = catalog or artifact.catalog()
        self._ids = c.ids.tolist()
        self._items = ItemIndex(self._ids)
        self._users = {user: u for u, user in enumerate(artifact.user_ids.tolist())}
        ordered = sp.csr_matrix(
            (artifact.history_ordered, artifact.history_indices, artifact.history_indptr),
            shape=(len(artifact.user_ids), c.size),
        )
        features = content.catalog_features(c.categories, c.brands, c.prices, c.tags)
        relations = ItemRelations(c.categories, c.brands, features, ordered)
        components = artifact.components
        self._vocabulary = Vocabulary(components, self.rules, c, self._users, self._items)
        self._contexts = Contexts(artifact, self._users, self._items, c.n_trained)
        self._masks = Masks(c, self.rules, self._items)
        self._candidates = Candidates(artifact, self.scorer, c, features)
        self._places = Places(relations, c.categories, c.n_trained)
        self._explainer = Explainer(components, c, relations)
        self._similar = SimilarItems(
            components, c, self._items, relations, self._masks, self._explainer, self.rules.default
        )

    def with_catalog(self, catalog: Catalog) -> Recommender:
        """The same models over another live catalog."""
        return Recommender(self._a, self.version, self.rules, self._manifest, catalog)

    @property
    def n_items(self) -> int:
        return len(self._ids)

    def item_id(self, index: int) -> str:
        return self._ids[index]

    def index(self, item_id: str) -> int:
        return self._items[item_id]

    def find(self, item_id: str) -> int | None:
        return self._items.get(item_id)

    def canonical(self, query: Query) -> Query:
        """The query with its scene, touchpoint and context values spelled as the models know them."""
        return self._vocabulary.canonical(query)

    def warnings(self, query: Query) -> list[RequestWarning]:
        """What in the query the model does not know, ignoring case (the answer is given without it)."""
        return self._vocabulary.warnings(query)

    def filter_warnings(
        self, item_filter: ItemFilter, exclude: tuple[str, ...], recent: tuple[str, ...] = ()
    ) -> list[RequestWarning]:
        return self._vocabulary.filter_warnings(item_filter, exclude, recent)

    def describe(self) -> ModelDescription:
        metrics = self._manifest.get("metrics", {})
        return ModelDescription(
            version=self.version,
            scenes=sorted(self._vocabulary.scenes),
            touchpoints=sorted(self._vocabulary.touchpoints),
            categories=sorted(self._vocabulary.categories),
            item_count=int(self.catalog.live().sum()),
            user_count=len(self._users),
            components=list(self._a.components),
            k=int(self._manifest.get("parameters", {}).get("k", DEFAULT_LIMIT)),
            holdout={name: dict(result["overall"]) for name, result in metrics.items()},
            event_types=list(self.event_types),
        )

    def context(self, query: Query, rule: TouchpointRule) -> QueryContext:
        """The query context of a request: user, history, session, scene, touchpoint, city, context."""
        return self._contexts.of(query, rule)

    def recommend(self, query: Query) -> list[ScoredItem]:
        """The answer to a query: each stage once, in order."""
        query = self._vocabulary.canonical(query)
        rule = self.rules.for_touchpoint(query.touchpoint, query.user_tags)
        ctx = self._contexts.of(query, rule)
        mask = self._masks.shown(query, ctx, rule)
        scored = self._candidates.scored(ctx, mask, query.limit)
        best = top(scored.items, scored.scores, query.limit, self.catalog.categories, rule.max_per_category)
        kept, complements = self._places.kept(best, scored, ctx, mask, rule, query.limit)
        return self._explainer.answer(kept, ctx, scored.terms, complements)

    def similar(
        self,
        item_id: str,
        limit: int,
        item_filter: ItemFilter,
        exclude: tuple[str, ...],
        relation: Relation = Relation.SIMILAR,
    ) -> list[ScoredItem]:
        """Substitutes (SIMILAR: the same kind first, by content and co-view) or complements
        (COMPLEMENTARY: other kinds, by co-purchase) of an item."""
        return self._similar.similar(item_id, limit, item_filter, exclude, relation)

    def collaborative_similarity(self, anchor: int) -> np.ndarray:
        """The item-to-item models in order of precedence: the first decides, each later one breaks ties."""
        return self._similar.collaborative(anchor)
