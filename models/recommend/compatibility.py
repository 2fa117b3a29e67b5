"""Which items go with which: what the catalog declares (a filter `fits:` a brand, a service is `for:` a
kind of item, in a `city:`), which kinds the customers buy together more than chance, and which pairs of
kinds they buy of one brand. Complements keep to it, and a reason names only an item related to the one
it explains."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy import stats

# Declared tags: `fits:BRAND` (works with that brand's items only), `for:CATEGORY` (a service or part for
# that kind of item), `city:CITY` (offered in that city only).
FITS, FOR, CITY = "fits", "for", "city"
# Two kinds are related when their buyers overlap at least this much more than chance (lift) and that
# is no accident (one-sided binomial test); the same holds for buying one brand in both.
MIN_LIFT = 1.5
SIGNIFICANCE = 1e-3


def gather(matrix: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(for each stored entry of `rows`, its position in `rows`; its position in the matrix's `indices`):
    a few rows of a CSR matrix in plain numpy, without scipy's per-call overhead (a session's items are
    looked up on every Recommend call)."""
    starts = matrix.indptr[rows]
    lengths = matrix.indptr[rows + 1] - starts
    owner = np.repeat(np.arange(rows.size), lengths)
    offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return owner, np.repeat(starts, lengths) + offsets


def _tag_values(features: list[list[str]], key: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(items, value codes, values) of the `tag:key:value` features."""
    prefix = f"tag:{key}:"
    pairs = [
        (i, name[len(prefix) :])
        for i, names in enumerate(features)
        for name in names
        if name.startswith(prefix)
    ]
    values = sorted({v for _, v in pairs})
    code = {v: n for n, v in enumerate(values)}
    items = np.array([i for i, _ in pairs], dtype=np.int64)
    return items, np.array([code[v] for _, v in pairs], dtype=np.int64), values


@dataclass(frozen=True)
class _Declared:
    """One declared tag: items × values (binary), by rows and by columns, and the values' columns."""

    rows: sp.csr_matrix
    columns: sp.csc_matrix
    column: dict[str, int]

    @classmethod
    def of(cls, features: list[list[str]], key: str) -> _Declared:
        items, codes, values = _tag_values(features, key)
        shape = (len(features), max(len(values), 1))
        rows = sp.csr_matrix((np.ones(items.size, dtype=np.int8), (items, codes)), shape=shape)
        return cls(rows, rows.tocsc(), {v: n for n, v in enumerate(values)})

    def items_for(self, value: str) -> np.ndarray:
        """The items that declare `value`."""
        column = self.column.get(value)
        if column is None:
            return np.empty(0, dtype=np.int64)
        return self.columns.indices[self.columns.indptr[column] : self.columns.indptr[column + 1]].astype(
            np.int64
        )

    def judge(self, items: np.ndarray, value: str) -> tuple[np.ndarray, np.ndarray]:
        """(whether each item declares any value, whether it declares `value`)."""
        declares = self.rows.indptr[items + 1] > self.rows.indptr[items]
        matches = np.zeros(items.size, dtype=bool)
        column = self.column.get(value)
        if column is not None and declares.any():
            owner, at = gather(self.rows, items)
            matches[owner[self.rows.indices[at] == column]] = True
        return declares, matches


def _beyond_chance(together: np.ndarray, trials: np.ndarray, chance: np.ndarray) -> np.ndarray:
    """Whether `together` successes in `trials` are at least MIN_LIFT times the `chance` rate, and
    significantly above it."""
    expected = trials * chance
    lift = np.divide(together, expected, out=np.zeros_like(expected), where=expected > 0)
    p = stats.binom.sf(together - 1, trials.astype(np.int64), np.clip(chance, 0.0, 1.0))
    return (lift >= MIN_LIFT) & (p < SIGNIFICANCE) & (trials > 0)


class Compatibility:
    """Immutable once built; serves concurrent queries."""

    def __init__(
        self, categories: np.ndarray, brands: np.ndarray, features: list[list[str]], bought: sp.csr_matrix
    ) -> None:
        """`features`: each item's content features (models/recommend/content.py); `bought`: users ×
        items, nonzero where the user ordered the item."""
        self._category_names, self._category = np.unique(categories, return_inverse=True)
        self._brand_names, self._brand = np.unique(brands.astype(str), return_inverse=True)
        self._branded = self._brand_names[self._brand] != ""
        self._fits, self._for, self._city = (_Declared.of(features, key) for key in (FITS, FOR, CITY))
        # Items by brand, for a kind bought of one brand with the anchor's.
        self._by_brand = sp.csr_matrix(
            (np.ones(self._brand.size, dtype=np.int8), (self._brand, np.arange(self._brand.size))),
            shape=(self._brand_names.size, self._brand.size),
        )
        bought = (bought != 0).astype(np.float64).tocsr()
        self._related, self._brand_bound = self._learned(bought)

    def _learned(self, bought: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """(kinds bought together beyond chance, pairs of kinds bought of one brand beyond chance), as
        categories × categories booleans."""
        n_users, n_items = bought.shape
        n_categories = self._category_names.size
        in_category = sp.csr_matrix(
            (np.ones(n_items), (np.arange(n_items), self._category)), shape=(n_items, n_categories)
        )
        buys = ((bought @ in_category) > 0).astype(np.float64)
        together = (buys.T @ buys).toarray()
        buyers = together.diagonal().copy()
        related = _beyond_chance(together, buyers[:, None], buyers[None, :] / max(n_users, 1))
        related = related & related.T  # the pair's overlap judged from both sides
        np.fill_diagonal(related, True)
        # Brands: per pair of kinds, of the customers who bought both, those who bought one brand in both,
        # against the chance that two of their purchases share a brand.
        pair = self._category * self._brand_names.size + self._brand
        keys, column = np.unique(pair[self._branded], return_inverse=True)
        in_pair = sp.csr_matrix(
            (np.ones(column.size), (np.flatnonzero(self._branded), column)), shape=(n_items, keys.size)
        )
        buys_pair = ((bought @ in_pair) > 0).astype(np.float64)
        co = (buys_pair.T @ buys_pair).tocoo()
        cat_of, brand_of = keys // self._brand_names.size, keys % self._brand_names.size
        same = brand_of[co.row] == brand_of[co.col]
        agreeing = np.zeros((n_categories, n_categories))
        np.add.at(agreeing, (cat_of[co.row[same]], cat_of[co.col[same]]), co.data[same])
        share = sp.csr_matrix(
            (np.asarray(buys_pair.sum(axis=0)).ravel(), (cat_of, brand_of)),
            shape=(n_categories, self._brand_names.size),
        ).toarray()
        share /= np.where(buyers > 0, buyers, 1.0)[:, None]
        chance = share @ share.T
        bound = _beyond_chance(agreeing, together, chance)
        np.fill_diagonal(bound, False)
        return related, bound

    def declared(self, anchor: int, city: str | None = None, items: np.ndarray | None = None) -> np.ndarray:
        """Per item (of `items`, default all), -1 where the catalog says it does not go with the anchor
        (it fits another brand, is for another kind of item, or is offered in other cities than `city`:
        in any city only, when `city` is "", unknown), +1 where it says it does, 0 where it says nothing.
        `city` None leaves the cities out of it."""
        items = np.arange(self._category.size) if items is None else items
        checks = [(self._fits, self._brand_names[self._brand[anchor]])]
        checks.append((self._for, self._category_names[self._category[anchor]]))
        if city is not None:
            checks.append((self._city, city))
        result = np.zeros(items.size, dtype=np.int8)
        conflicting = np.zeros(items.size, dtype=bool)
        for declared, value in checks:
            declares, matches = declared.judge(items, str(value))
            conflicting |= declares & ~matches
            result[matches] = 1
        result[conflicting] = -1
        return result

    def declared_for(self, anchor: int, city: str | None = None) -> np.ndarray:
        """The items the catalog declares for the anchor (and `city`), without a pass over the catalog."""
        brand, kind = self._brand_names[self._brand[anchor]], self._category_names[self._category[anchor]]
        named = np.union1d(self._fits.items_for(str(brand)), self._for.items_for(str(kind)))
        return named[self.declared(anchor, city, named) > 0]

    def of_its_brand(self, anchor: int) -> np.ndarray:
        """The items of the anchor's brand in kinds bought of one brand with the anchor's."""
        if not self._branded[anchor]:
            return np.empty(0, dtype=np.int64)
        brand = self._brand[anchor]
        items = self._by_brand.indices[self._by_brand.indptr[brand] : self._by_brand.indptr[brand + 1]]
        return items[self._brand_bound[self._category[anchor]][self._category[items]]].astype(np.int64)

    def kinds_related(self, anchor: int, items: np.ndarray) -> np.ndarray:
        """Per item of `items`, whether its kind is the anchor's or bought with it beyond chance."""
        return self._related[self._category[anchor]][self._category[items]]

    def related(self, anchors: np.ndarray, items: np.ndarray) -> np.ndarray:
        """anchors × items: whether an item may be explained by an anchor: what the catalog declares of
        the item where it declares anything, else the same kind or a kind bought with it beyond chance."""
        result = self._related[self._category[anchors][:, None], self._category[items][None, :]]
        for row, anchor in enumerate(anchors.tolist()):
            declared = self.declared(anchor, items=items)
            result[row] = np.where(declared != 0, declared > 0, result[row])
        return result
