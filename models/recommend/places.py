"""Places an answer keeps for items the blend alone would not bring: items added since training (a
touchpoint's `new_items_per_page`) and what goes with the items of the session (`complements_per_page`:
a visitor looking at purifiers is shown their filters and installation)."""

from __future__ import annotations

from collections.abc import Callable

Ranked = list[tuple[int, float]]  # (item index, score), best first


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
