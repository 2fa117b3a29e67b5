"""What an answer may show: live items (in stock unless the filter says otherwise) that pass the
request's filter and the touchpoint's rules, without the items the request excludes or its session's,
nor what the user ordered once and for all (a sofa once bought is not shown again; a filter is)."""

from __future__ import annotations

import numpy as np

from models.recommend.catalog import Catalog, ItemIndex
from models.recommend.component import QueryContext
from models.recommend.query import ItemFilter, Query
from models.recommend.touchpoints import TouchpointRule, TouchpointRules


class Masks:
    """Immutable once built: every query's mask starts from one made here."""

    def __init__(self, catalog: Catalog, rules: TouchpointRules, items: ItemIndex) -> None:
        self._catalog = catalog
        self._items = items
        # Masks of the category sets the touchpoint rules name, made once: the sets a client sends are
        # computed per call, so no client can grow this.
        self._category_masks = {
            categories: np.isin(catalog.categories, list(categories))
            for rule in (rules.default, *rules.touchpoints.values())
            for categories in (rule.categories, rule.exclude_categories, rule.repeatable_categories)
        }
        self._live = catalog.live()
        self._live_in_stock = self._live & catalog.in_stock

    def shown(self, query: Query, ctx: QueryContext, rule: TouchpointRule) -> np.ndarray:
        """Per item of the catalog, whether the answer to `query` may show it."""
        mask = self.allowed(query.filter, query.exclude_item_ids + query.recent_item_ids, rule)
        once_only = ctx.history_ordered & ~self._in_categories(rule.repeatable_categories)[ctx.history]
        mask[ctx.history[once_only]] = False
        return mask

    def allowed(self, item_filter: ItemFilter, exclude: tuple[str, ...], rule: TouchpointRule) -> np.ndarray:
        """Per item, whether it passes the filter and the rule and is not excluded (a new array)."""
        c = self._catalog
        mask = (self._live_in_stock if item_filter.in_stock_only else self._live).copy()
        for include in (item_filter.include_categories, rule.categories):
            if include:
                mask &= self._in_categories(include)
        for excluded in (item_filter.exclude_categories, rule.exclude_categories):
            if excluded:
                mask &= ~self._in_categories(excluded)
        # An item without a price cannot be shown to fit a price range.
        if item_filter.min_price is not None:
            mask &= c.prices >= item_filter.min_price
        if item_filter.max_price is not None:
            mask &= c.prices <= item_filter.max_price
        mask[self._items.indices(exclude)] = False
        return mask

    def _in_categories(self, categories: frozenset[str]) -> np.ndarray:
        """Whether each item is in one of these categories (read-only when it is a rule's set)."""
        mask = self._category_masks.get(categories)
        if mask is None:
            mask = np.isin(self._catalog.categories, list(categories))
        return mask
