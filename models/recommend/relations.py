"""Item-to-item answers for a product page: substitutes, the same kind of item (other sofas), from
content and co-view; complements, other kinds bought by the same customers (a purifier's filters and
its installation), from co-purchase."""

from __future__ import annotations

import enum

import numpy as np
import scipy.sparse as sp

# Substitutes: an item of the anchor's category ranks above every item of another, whatever the rest.
SAME_KIND = 10.0
# Complements: the anchor's own co-purchases decide; how often its category is bought with each other
# category (times the item's popularity) only orders what no co-purchase separates, then shared content
# (the purifier's own brand of filter), then popularity.
CATEGORY_AFFINITY = 1e-2
SHARED_CONTENT = 1e-3
POPULARITY = 1e-4


class Relation(enum.Enum):
    SIMILAR = "similar"
    COMPLEMENTARY = "complementary"


class ItemRelations:
    """Immutable once built; serves concurrent queries."""

    def __init__(self, categories: np.ndarray, content: sp.csr_matrix, ordered: sp.csr_matrix) -> None:
        """`content`: items × content features (binary); `ordered`: users × items, nonzero where the user
        ordered the item."""
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

    def complements(self, anchor: int) -> np.ndarray:
        """Scores of the items of other categories (items of the anchor's own kind are substitutes, not
        complements: the caller masks them with `same_kind`)."""
        return (
            self.co_purchase(anchor)
            + CATEGORY_AFFINITY * self.category_affinity(anchor) * (0.5 + 0.5 * self._popularity)
            + SHARED_CONTENT * self.content_similarity(anchor)
            + POPULARITY * self._popularity
        )

    def category_name(self, item: int) -> str:
        """The item's category as a person reads it ("water purifier")."""
        return str(self._category_names[self._category[item]]).replace("_", " ")
