"""Item-to-item answers for a product page: substitutes, the same kind of item (other sofas), from
content and co-view; complements, other kinds bought by the same customers (a purifier's filters and
its installation), from co-purchase, kept to what goes with the item (models/recommend/compatibility.py)."""

from __future__ import annotations

import enum
import functools

import numpy as np
import scipy.sparse as sp

from models.recommend import content as item_content
from models.recommend.compatibility import Compatibility, gather

# Substitutes: an item of the anchor's category ranks above every item of another, whatever the rest.
SAME_KIND = 10.0
# Complements: what the catalog declares to go with the anchor (a filter that fits its brand, its
# installation) comes first, and in a kind customers buy of one brand with the anchor's (a purifier's
# filters) the anchor's brand; then the anchor's own co-purchases decide; how often its category is
# bought with each other category (times the item's popularity) only orders what no co-purchase
# separates, then shared content, then popularity.
CATEGORY_AFFINITY = 1e-2
SHARED_CONTENT = 1e-3
POPULARITY = 1e-4
# Session items whose complements a version remembers (a few hundred items each at most).
GOES_WITH_REMEMBERED = 4096
DECLARED = 2.0  # above any co-purchase cosine (at most 1)
SAME_BRAND = 2.0


class Relation(enum.Enum):
    SIMILAR = "similar"
    COMPLEMENTARY = "complementary"


class ItemRelations:
    """Immutable once built; serves concurrent queries."""

    def __init__(
        self, categories: np.ndarray, brands: np.ndarray, features: list[list[str]], ordered: sp.csr_matrix
    ) -> None:
        """`features`: each item's content features (models/recommend/content.py); `ordered`: users ×
        items, nonzero where the user ordered the item."""
        self.compatibility = Compatibility(categories, brands, features, ordered)
        self._remembered = functools.lru_cache(maxsize=GOES_WITH_REMEMBERED)(self._goes_with)
        content = item_content.one_hot(features, {})
        self._category_names, self._category = np.unique(categories, return_inverse=True)
        norms = np.sqrt(np.asarray(content.multiply(content).sum(axis=1)).ravel())
        self._content = (sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ content).tocsr().astype(np.float32)
        self._content_t = self._content.T.tocsr()
        bought = (ordered != 0).astype(np.float32).tocsr()
        self._bought = bought
        self._buyers = bought.T.tocsr()  # items × users
        self._buyer_counts = np.diff(self._buyers.indptr).astype(np.float32)
        peak = self._buyer_counts.max() if self._buyer_counts.size else 0.0
        self._popularity = self._buyer_counts / peak if peak > 0 else self._buyer_counts
        in_category = sp.csr_matrix(
            (
                np.ones(self._category.size, dtype=np.float32),
                (np.arange(self._category.size), self._category),
            ),
            shape=(self._category.size, self._category_names.size),
        )
        users_categories = ((bought @ in_category) > 0).astype(np.float32)
        # Categories × categories, kept sparse: a catalog may have many categories, few bought together.
        affinity = (users_categories.T @ users_categories).tocsr()
        affinity.setdiag(0.0)
        affinity.eliminate_zeros()
        peaks = affinity.max(axis=1).toarray().ravel()
        self._affinity = (sp.diags(1.0 / np.where(peaks > 0, peaks, 1.0)) @ affinity).tocsr()
        self._affinity.sort_indices()  # looked up by binary search (_row_at)

    def same_kind(self, anchor: int) -> np.ndarray:
        return self._category == self._category[anchor]

    def content_similarity(self, anchor: int) -> np.ndarray:
        """Cosine of the items' content features with the anchor's."""
        row = self._content[anchor]
        return np.asarray((self._content @ row.T).todense()).ravel()

    def substitutes(self, anchor: int, collaborative: np.ndarray) -> np.ndarray:
        """Same kind first, then content and co-view (`collaborative`: the item-to-item models' score,
        scaled here to at most 1) together."""
        peak = float(np.abs(collaborative).max()) if collaborative.size else 0.0
        co_view = collaborative / peak if peak > 0 else collaborative
        return SAME_KIND * self.same_kind(anchor) + self.content_similarity(anchor) + co_view

    def co_purchase(self, anchor: int) -> np.ndarray:
        """Cosine of who bought each item with who bought the anchor (0 where nobody bought both)."""
        buyers = self._buyers.indices[self._buyers.indptr[anchor] : self._buyers.indptr[anchor + 1]]
        together = np.asarray(self._bought[buyers].sum(axis=0)).ravel()
        scale = np.sqrt(self._buyer_counts[anchor] * self._buyer_counts)
        return np.divide(together, scale, out=np.zeros_like(together), where=scale > 0)

    def category_affinity(self, anchor: int) -> np.ndarray:
        """Per item, how often the anchor's category is bought with the item's (1: most often)."""
        return self._affinity[self._category[anchor]].toarray().ravel()[self._category]

    def complements(self, anchor: int, city: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, whether each item goes with the anchor at all) of the items of other categories:
        items of the anchor's own kind are substitutes, not complements (the caller masks them with
        `same_kind`); an item the catalog declares for another brand, kind or city than the anchor's
        and `city` does not go with it."""
        declared = self.compatibility.declared(anchor, city)
        every = np.arange(self._category.size)
        same_brand = np.zeros(every.size, dtype=bool)
        same_brand[self.compatibility.of_its_brand(anchor)] = True
        scores = self._complement_scores(anchor, every, declared, self.co_purchase(anchor), same_brand)
        return scores, declared >= 0

    def goes_with(self, anchor: int, city: str) -> tuple[np.ndarray, np.ndarray]:
        """`_goes_with`, remembered: the answer depends only on this version's catalog, and the items
        people look at recur from call to call. Read-only arrays, shared by the calls that ask."""
        return self._remembered(anchor, city)

    def _goes_with(self, anchor: int, city: str) -> tuple[np.ndarray, np.ndarray]:
        """(items, their complement scores), best first: the items of other kinds that the catalog declares
        for the anchor, that its buyers bought in kinds bought with its beyond chance, or of its brand
        where its kind is bought of one brand; found without a pass over the catalog (a session's items
        are asked this on every call). An item offered in some cities only goes with it in those, and
        not at all when `city` is "" (unknown)."""
        buyers = self._buyers.indices[self._buyers.indptr[anchor] : self._buyers.indptr[anchor + 1]]
        _, at = gather(self._bought, buyers)
        bought, together = np.unique(self._bought.indices[at], return_counts=True)
        related = self.compatibility.kinds_related(anchor, bought)
        its_brand = self.compatibility.of_its_brand(anchor)
        items = np.union1d(
            np.union1d(self.compatibility.declared_for(anchor, city), bought[related]), its_brand
        ).astype(np.int64)
        items = items[self._category[items] != self._category[anchor]]
        declared = self.compatibility.declared(anchor, city, items)
        items, declared = items[declared >= 0], declared[declared >= 0]
        counts = np.zeros(items.size, dtype=np.float32)
        if bought.size:
            at = np.minimum(np.searchsorted(bought, items), bought.size - 1)
            hit = bought[at] == items
            counts[hit] = together[at[hit]]
        scale = np.sqrt(self._buyer_counts[anchor] * self._buyer_counts[items])
        co_purchase = np.divide(counts, scale, out=np.zeros_like(counts), where=scale > 0)
        same_brand = np.isin(items, its_brand)
        scores = self._complement_scores(anchor, items, declared, co_purchase, same_brand)
        order = np.lexsort((items, -scores))
        items, scores = items[order], scores[order]
        items.flags.writeable = scores.flags.writeable = False
        return items, scores

    def _complement_scores(
        self,
        anchor: int,
        items: np.ndarray,
        declared: np.ndarray,
        co_purchase: np.ndarray,
        same_brand: np.ndarray,
    ) -> np.ndarray:
        """The complement score of `items` (the other arguments are per item of `items`)."""
        affinity = self._row_at(self._affinity, self._category[anchor], self._category[items])
        content = self._content_at(anchor, items)
        popularity = self._popularity[items]
        return (
            co_purchase
            + DECLARED * (declared > 0)
            + SAME_BRAND * same_brand
            + CATEGORY_AFFINITY * affinity * (0.5 + 0.5 * popularity)
            + SHARED_CONTENT * content
            + POPULARITY * popularity
        )

    @staticmethod
    def _row_at(matrix: sp.csr_matrix, row: int, columns: np.ndarray) -> np.ndarray:
        """matrix[row, columns] of a CSR matrix with sorted indices, in plain numpy."""
        lo, hi = matrix.indptr[row], matrix.indptr[row + 1]
        indices, data = matrix.indices[lo:hi], matrix.data[lo:hi]
        if not indices.size:
            return np.zeros(columns.size, dtype=np.float64)
        at = np.minimum(np.searchsorted(indices, columns), indices.size - 1)
        return np.where(indices[at] == columns, data[at], 0.0)

    def _content_at(self, anchor: int, items: np.ndarray) -> np.ndarray:
        """Cosine of `items`' content features with the anchor's (`content_similarity` at those items)."""
        lo, hi = self._content.indptr[anchor], self._content.indptr[anchor + 1]
        features, weights = self._content.indices[lo:hi], self._content.data[lo:hi]
        result = np.zeros(items.size, dtype=np.float64)
        if not features.size:
            return result
        order = np.argsort(features)
        features, weights = features[order], weights[order]
        owner, at = gather(self._content, items)
        columns = self._content.indices[at]
        found = np.minimum(np.searchsorted(features, columns), features.size - 1)
        shared = features[found] == columns
        np.add.at(result, owner[shared], self._content.data[at][shared] * weights[found[shared]])
        return result

    def category_name(self, item: int) -> str:
        """The item's category as a person reads it ("water purifier")."""
        return str(self._category_names[self._category[item]]).replace("_", " ")
