"""The items an answer chooses from and their blended scores: the allowed items of the version (only its
retrieved candidates, on a large catalog) and the items added since training, scored by their content."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.recommend.artifact import RecommenderArtifact
from models.recommend.catalog import Catalog
from models.recommend.component import QueryContext
from models.recommend.components import FALLBACK
from models.recommend.scoring import NOVELTY, Scorer, Term, blend_at

# Large catalogs (models/recommend/retrieval.py): candidates asked of the graph per query (it searches and
# returns retrieval.SEARCH_BREADTH times as many), besides the heads. On 200,000 items (benchmarks/catalog.py)
# a 10-item answer from 200, 100 or 64 was the full pass's for every query; p99 in process 3.3, 2.2, 1.8 ms.
RETRIEVED_MIN = 64
RETRIEVED_PER_PLACE = 4


@dataclass(frozen=True)
class Scored:
    """The allowed items (the version's, then the new ones) with their blended scores, the new items
    best first (ties by index), and the blend's terms (scoring.blend_at scores other items with them)."""

    items: np.ndarray
    scores: np.ndarray
    new_ranked: list[tuple[int, float]]
    terms: dict[str, Term]


class Candidates:
    """Immutable once built: scores the candidates of each query of one model version and catalog."""

    def __init__(
        self, artifact: RecommenderArtifact, scorer: Scorer, catalog: Catalog, features: list[list[str]]
    ) -> None:
        self._components = artifact.components
        self._scorer = scorer
        self._n_trained, self._size = catalog.n_trained, catalog.size
        # Items added since training: their content features, for the models that can place them.
        self._new_features = features[catalog.n_trained :]
        new_categories = catalog.categories[catalog.n_trained :]
        names, self._trained_category_codes = np.unique(
            catalog.categories[: catalog.n_trained], return_inverse=True
        )
        self._category_sizes = np.bincount(self._trained_category_codes, minlength=names.size).astype(float)
        at = np.minimum(np.searchsorted(names, new_categories), max(names.size - 1, 0))
        known = names.size > 0 and names[at] == new_categories
        self._new_category_codes = np.where(known, at, -1)

    def scored(self, ctx: QueryContext, mask: np.ndarray, limit: int) -> Scored:
        """The items `mask` allows, of the version and added since, with their blended scores."""
        items, scores, terms = self._trained(ctx, mask, limit)
        n_trained = self._n_trained
        new_items = np.flatnonzero(mask[n_trained:]) + n_trained
        new_scores = np.empty(0, dtype=np.float32)
        if new_items.size:
            new_scores = self._new_item_scores(ctx, terms)[new_items - n_trained]
        ranked = zip(new_items.tolist(), new_scores.tolist(), strict=True)
        return Scored(
            np.concatenate([items, new_items]),
            np.concatenate([scores, new_scores]),
            sorted(ranked, key=lambda entry: (-entry[1], entry[0])),
            terms,
        )

    def _trained(
        self, ctx: QueryContext, mask: np.ndarray, limit: int
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Term]]:
        """(the version's items to choose from, their blended scores, the blend's terms): the allowed
        items. A large catalog scores only its retrieved candidates that are allowed (over-fetched so that
        filters and per-category caps still fill the answer; no array the size of the catalog is made),
        unless fewer than `limit` of them are: then the whole catalog."""
        retrieved = self._scorer.retrieve(ctx, max(RETRIEVED_MIN, RETRIEVED_PER_PLACE * limit))
        if retrieved is not None:
            candidates, terms = retrieved
            chosen = candidates[mask[candidates]]
            if chosen.size >= limit:
                return chosen, blend_at(terms, chosen), terms
        scores, terms = self._scorer.blend(ctx)
        allowed = np.flatnonzero(mask[: self._n_trained])
        return allowed, scores[allowed], terms

    def _new_item_scores(self, ctx: QueryContext, terms: dict[str, Term]) -> np.ndarray:
        """The blend for items added since training: each term from the component's own view of the new
        items' content where it has one (LightFM's feature embeddings), else from the mean of the item's
        category (popularity, the item-to-item models: a new lamp is worth what lamps are)."""
        total = np.zeros(self._size - self._n_trained, dtype=np.float32)
        for name, term in terms.items():
            component = self._components[FALLBACK if name == NOVELTY else name]
            raw = component.score_new_items(ctx, self._new_features)
            if raw is None:
                raw = self.category_means(term.full())
            total += (term.scale * (raw - term.mean)).astype(np.float32)
        return total

    def category_means(self, raw: np.ndarray) -> np.ndarray:
        """Per new item, the mean of `raw` over the version's items of its category (the catalog mean
        for a category the version does not have)."""
        codes, new = self._trained_category_codes, self._new_category_codes
        sums = np.bincount(codes, weights=raw, minlength=self._category_sizes.size)
        means = np.divide(sums, self._category_sizes, out=np.zeros_like(sums), where=self._category_sizes > 0)
        return np.where(new >= 0, means[np.maximum(new, 0)], float(raw.mean()))
