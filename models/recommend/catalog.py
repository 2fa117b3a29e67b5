"""The catalog a recommender answers from: the items of its training, with the live changes the
storefront sent since (stock, price, new items, deletions) laid over them.

A change is kept as the fields it set (an `ItemChange`), not as a whole item, so that it applies on top
of whichever model version serves: a price set an hour ago stays set when a version trained yesterday
is loaded, and the fields nobody changed come from the version.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np

from models.recommend import content


@dataclass(frozen=True)
class ItemChange:
    """What the storefront said of one item; None: not said (the model version's value holds)."""

    item_id: str
    title: str | None = None
    category: str | None = None
    brand: str | None = None
    price: float | None = None
    in_stock: bool | None = None
    tags: tuple[str, ...] | None = None
    deleted: bool = False

    def merged(self, later: ItemChange) -> ItemChange:
        """This change with a later one on top: a deletion clears what was said before it, an update
        after a deletion brings the item back with only what the update says."""
        if later.deleted:
            return ItemChange(self.item_id, deleted=True)
        base = ItemChange(self.item_id) if self.deleted else self
        said = {f.name: getattr(later, f.name) for f in fields(later) if f.name not in ("item_id", "deleted")}
        return ItemChange(
            self.item_id,
            **{name: value if value is not None else getattr(base, name) for name, value in said.items()},
        )


@dataclass(frozen=True)
class Item:
    """One item as the service now believes it."""

    item_id: str
    title: str
    category: str
    brand: str
    price: float  # NaN when unknown
    in_stock: bool
    tags: tuple[str, ...]
    trained: bool  # known to the serving model version (else added since: recommended by its content)


@dataclass(frozen=True)
class Catalog:
    """Items in index order: the model version's `n_trained` items first (deleted ones stay, marked, so
    that indices match the models), then the items added since."""

    ids: np.ndarray  # str
    titles: np.ndarray  # str
    categories: np.ndarray  # str
    brands: np.ndarray  # str
    prices: np.ndarray  # float64, NaN when unknown
    in_stock: np.ndarray  # bool
    tags: np.ndarray  # str, joined by content.TAG_SEPARATOR
    deleted: np.ndarray  # bool
    n_trained: int

    @property
    def size(self) -> int:
        return len(self.ids)

    def live(self) -> np.ndarray:
        return ~self.deleted

    def item(self, index: int) -> Item:
        return Item(
            item_id=str(self.ids[index]),
            title=str(self.titles[index]),
            category=str(self.categories[index]),
            brand=str(self.brands[index]),
            price=float(self.prices[index]),
            in_stock=bool(self.in_stock[index]),
            tags=tuple(content.split_tags(str(self.tags[index]))),
            trained=index < self.n_trained,
        )

    def with_changes(self, changes: Mapping[str, ItemChange]) -> Catalog:
        """This catalog (a model version's) with the live changes applied. A change to an item the
        version does not have adds it when it names a category; one without is not an item yet."""
        columns = {
            name: getattr(self, name).tolist()
            for name in ("ids", "titles", "categories", "brands", "prices", "in_stock", "tags", "deleted")
        }
        index = {item: i for i, item in enumerate(columns["ids"][: self.n_trained])}
        for item_id, change in sorted(changes.items()):
            i = index.get(item_id)
            if i is None:
                if change.deleted or not change.category:
                    continue
                i = len(columns["ids"])
                for name, empty in NEW_ITEM.items():
                    columns[name].append(item_id if name == "ids" else empty)
            if change.deleted:
                columns["deleted"][i] = True
                continue
            columns["deleted"][i] = False
            for name, column in SET_BY.items():
                value = getattr(change, name)
                if value is not None:
                    columns[column][i] = content.TAG_SEPARATOR.join(value) if name == "tags" else value
        return Catalog(
            ids=np.array(columns["ids"], dtype=str),
            titles=np.array(columns["titles"], dtype=str),
            categories=np.array(columns["categories"], dtype=str),
            brands=np.array(columns["brands"], dtype=str),
            prices=np.array(columns["prices"], dtype=np.float64),
            in_stock=np.array(columns["in_stock"], dtype=bool),
            tags=np.array(columns["tags"], dtype=str),
            deleted=np.array(columns["deleted"], dtype=bool),
            n_trained=self.n_trained,
        )


class ItemIndex:
    """Where each item id is in a catalog's index order; made once per catalog, read by every query."""

    def __init__(self, ids: list[str]) -> None:
        self._at = {item: i for i, item in enumerate(ids)}

    def __contains__(self, item_id: str) -> bool:
        return item_id in self._at

    def __getitem__(self, item_id: str) -> int:
        return self._at[item_id]

    def get(self, item_id: str) -> int | None:
        return self._at.get(item_id)

    def indices(self, item_ids: tuple[str, ...]) -> np.ndarray:
        """Known items only, first occurrence kept, in the given order."""
        seen = dict.fromkeys(map(self._at.get, item_ids))
        seen.pop(None, None)
        return np.fromiter(seen, dtype=np.int64, count=len(seen))


# An added item's columns before its change is applied; a price nobody gave is unknown.
NEW_ITEM = {
    "ids": "",
    "titles": "",
    "categories": "",
    "brands": "",
    "prices": math.nan,
    "in_stock": True,
    "tags": "",
    "deleted": False,
}
SET_BY = {
    "title": "titles",
    "category": "categories",
    "brand": "brands",
    "price": "prices",
    "in_stock": "in_stock",
    "tags": "tags",
}
