"""What a recommendation request means: the query, its filter, and what in it the models do not know.
A request's values are read as the models spell them ("Shanghai" is shanghai); an unknown value is
reported as a warning and the answer is given without it."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from models.recommend.catalog import Catalog, ItemIndex
from models.recommend.component import Component
from models.recommend.touchpoints import TouchpointRules

DEFAULT_LIMIT = 10  # items per answer when the request does not say


class WarningCode(enum.Enum):
    UNKNOWN_SCENE = "unknown_scene"
    UNKNOWN_TOUCHPOINT = "unknown_touchpoint"
    UNKNOWN_CATEGORY = "unknown_category"
    UNKNOWN_ITEM = "unknown_item"
    UNKNOWN_USER = "unknown_user"
    UNKNOWN_CONTEXT = "unknown_context"


@dataclass(frozen=True)
class RequestWarning:
    """A value in the request the model does not know; the answer is given without it."""

    code: WarningCode
    field: str
    value: str


@dataclass(frozen=True)
class ItemFilter:
    include_categories: frozenset[str] = frozenset()
    exclude_categories: frozenset[str] = frozenset()
    min_price: float | None = None
    max_price: float | None = None
    in_stock_only: bool = True


@dataclass(frozen=True)
class Query:
    user_id: str = ""
    scene: str = ""
    touchpoint: str = ""
    limit: int = DEFAULT_LIMIT
    exclude_item_ids: tuple[str, ...] = ()
    recent_item_ids: tuple[str, ...] = ()
    context: dict[str, str] = field(default_factory=dict)
    filter: ItemFilter = field(default_factory=ItemFilter)
    # The user's tags (the service looks them up in its audience set): tag blocks of touchpoint rules.
    user_tags: frozenset[str] = frozenset()


class Vocabulary:
    """Every value a model version knows: scenes, touchpoints, context values, live categories, users
    and items. Immutable once built."""

    def __init__(
        self,
        components: Mapping[str, Component],
        rules: TouchpointRules,
        catalog: Catalog,
        users: Mapping[str, int],
        items: ItemIndex,
    ) -> None:
        vocabulary: dict[str, set[str]] = {}
        for component in components.values():
            for kind, values in component.vocabulary().items():
                vocabulary.setdefault(kind, set()).update(values)
        every_rule = (rules.default, *rules.touchpoints.values())
        rule_scenes = {rule.default_scene for rule in every_rule if rule.default_scene}
        self.scenes = vocabulary.get("scene", set()) | rule_scenes
        self.touchpoints = vocabulary.get("touchpoint", set()) | set(rules.touchpoints)
        # Every value the models know, by its case-folded spelling: a request's "Shanghai" is shanghai.
        self._spellings = {
            kind: {value.casefold(): value for value in values}
            for kind, values in (
                *vocabulary.items(),
                ("scene", self.scenes),
                ("touchpoint", self.touchpoints),
            )
        }
        self.categories = set(catalog.categories[catalog.live()].tolist())
        self._users = users
        self._items = items

    def _spelled(self, kind: str, value: str) -> str | None:
        """The known spelling of a value, ignoring case; None when the models do not know it."""
        return self._spellings.get(kind, {}).get(value.casefold())

    def canonical(self, query: Query) -> Query:
        """The query with its scene, touchpoint and context values spelled as the models know them."""
        context = {key: self._spelled(key, value) or value for key, value in query.context.items()}
        return replace(
            query,
            scene=self._spelled("scene", query.scene) or query.scene,
            touchpoint=self._spelled("touchpoint", query.touchpoint) or query.touchpoint,
            context=context,
        )

    def warnings(self, query: Query) -> list[RequestWarning]:
        """What in the query the model does not know, ignoring case (the answer is given without it)."""
        found = []
        if query.user_id and query.user_id not in self._users:
            found.append(RequestWarning(WarningCode.UNKNOWN_USER, "user_id", query.user_id))
        if query.scene and self._spelled("scene", query.scene) is None:
            found.append(RequestWarning(WarningCode.UNKNOWN_SCENE, "scene", query.scene))
        if query.touchpoint and self._spelled("touchpoint", query.touchpoint) is None:
            found.append(RequestWarning(WarningCode.UNKNOWN_TOUCHPOINT, "touchpoint", query.touchpoint))
        for key, value in sorted(query.context.items()):
            if key not in self._spellings:
                found.append(RequestWarning(WarningCode.UNKNOWN_CONTEXT, "context", key))
            elif self._spelled(key, value) is None:
                found.append(RequestWarning(WarningCode.UNKNOWN_CONTEXT, f"context[{key}]", value))
        return found + self.filter_warnings(query.filter, query.exclude_item_ids, query.recent_item_ids)

    def filter_warnings(
        self, item_filter: ItemFilter, exclude: tuple[str, ...], recent: tuple[str, ...] = ()
    ) -> list[RequestWarning]:
        found = []
        for name, categories in (
            ("filter.include_categories", item_filter.include_categories),
            ("filter.exclude_categories", item_filter.exclude_categories),
        ):
            found += [
                RequestWarning(WarningCode.UNKNOWN_CATEGORY, name, c)
                for c in sorted(categories)
                if c not in self.categories
            ]
        for name, ids in (("recent_item_ids", recent), ("exclude_item_ids", exclude)):
            found += [
                RequestWarning(WarningCode.UNKNOWN_ITEM, f"{name}[{i}]", item)
                for i, item in enumerate(ids)
                if item not in self._items
            ]
        return found
