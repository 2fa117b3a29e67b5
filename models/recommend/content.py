"""What an item is, as features: category, brand, price band within its category, and tags. Training
gives these to LightFM (with the item's identity); serving uses the same names for items added after
training and for content similarity, so the two can never disagree on what a feature means."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

PRICE_BANDS = 4  # price quartiles within a category
TAG_SEPARATOR = "|"


def price_bands(prices: np.ndarray, categories: np.ndarray) -> np.ndarray:
    """Each item's price band (0 cheapest … PRICE_BANDS − 1) among the priced items of its category, by
    rank; -1 where the price is unknown or the category has fewer priced items than bands."""
    bands = np.full(prices.shape, -1, dtype=np.int64)
    known = ~np.isnan(prices)
    for category in np.unique(categories[known]):
        members = np.flatnonzero(known & (categories == category))
        if members.size < PRICE_BANDS:
            continue
        order = members[np.lexsort((members, prices[members]))]
        bands[order] = (np.arange(members.size) * PRICE_BANDS) // members.size
    return bands


def band_of(price: float, category: str, prices: np.ndarray, categories: np.ndarray) -> int:
    """The band a new item's price falls in among the reference items of its category (-1: unknown)."""
    reference = prices[(categories == category) & ~np.isnan(prices)]
    if np.isnan(price) or reference.size < PRICE_BANDS:
        return -1
    below = int(np.searchsorted(np.sort(reference), price, side="left"))
    return min((below * PRICE_BANDS) // reference.size, PRICE_BANDS - 1)


def split_tags(text: str) -> list[str]:
    return [t.strip() for t in text.split(TAG_SEPARATOR) if t.strip()]


def feature_names(category: str, brand: str, band: int, tags: list[str]) -> list[str]:
    """An item's content features, identity excluded."""
    names = [f"category:{category}"]
    if brand:
        names.append(f"brand:{brand}")
    if band >= 0:
        names.append(f"price_band:{category}:{band}")
    return names + [f"tag:{t}" for t in tags]


def catalog_features(
    categories: np.ndarray, brands: np.ndarray, prices: np.ndarray, tags: np.ndarray
) -> list[list[str]]:
    """The content features of every item of a catalog (tags as TAG_SEPARATOR-joined text)."""
    bands = price_bands(prices, categories)
    return [
        feature_names(str(c), str(b), int(n), split_tags(str(t)))
        for c, b, n, t in zip(categories, brands, bands, tags, strict=True)
    ]


def one_hot(rows: list[list[str]], vocabulary: dict[str, int]) -> sp.csr_matrix:
    """Rows of feature names as a binary matrix over `vocabulary`, which grows to take new names."""
    indptr, indices = [0], []
    for names in rows:
        for name in dict.fromkeys(names):
            indices.append(vocabulary.setdefault(name, len(vocabulary)))
        indptr.append(len(indices))
    return sp.csr_matrix(
        (np.ones(len(indices), dtype=np.float32), np.array(indices, dtype=np.int32), np.array(indptr)),
        shape=(len(rows), max(len(vocabulary), 1)),
    )
