"""The best items of an answer, best first, with a touchpoint's cap on items per category."""

from __future__ import annotations

import numpy as np


def top(
    allowed: np.ndarray, values: np.ndarray, limit: int, categories: np.ndarray, per_category: int
) -> list[tuple[int, float]]:
    """The `limit` best of the `allowed` items (scored `values`), best first (ties by item index, for
    stable answers). With a cap per category, items over the cap give way to the next best of other
    categories, and fill the remaining places only when nothing else qualifies."""
    if limit <= 0 or not allowed.size:
        return []

    if not per_category and limit < allowed.size:
        part = np.argpartition(-values, limit - 1)[:limit]
        allowed, values = allowed[part], values[part]
    order = np.lexsort((allowed, -values))
    ranked = [(int(allowed[i]), float(values[i])) for i in order]
    if not per_category:
        return ranked[:limit]
    chosen: list[tuple[int, float]] = []
    overflow: list[tuple[int, float]] = []
    counts: dict[str, int] = {}
    for item, score in ranked:
        category = categories[item]
        if counts.get(category, 0) < per_category:
            counts[category] = counts.get(category, 0) + 1
            chosen.append((item, score))
            if len(chosen) == limit:
                return chosen
        else:
            overflow.append((item, score))
    return chosen + overflow[: limit - len(chosen)]
