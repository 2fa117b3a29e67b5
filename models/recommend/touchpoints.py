"""Per-touchpoint business rules, read from a TOML file.

[default]                       # every touchpoint, unless it says otherwise
repeatable_categories = ["purifier_filter"]   # ordered items of these may be recommended again
max_per_category = 0            # diversity cap per category in one answer (0: none)
new_items_per_page = 0          # places kept for items added since the model was trained
complements_per_page = 3        # places kept for what goes with the session's items (at most a third)

[touchpoint.service_reminder]
categories = ["purifier_filter", "repair", "cleaning"]   # the candidate pool (empty: everything)
exclude_categories = []
default_scene = "service_reminder"                     # when the request names no scene
max_per_category = 2

[touchpoint.home_banner.tag.refill_due]              # users carrying the tag (an audience set's)
categories = ["purifier_filter"]                     # the touchpoint's rule with these keys changed
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


class TouchpointConfigError(ValueError):
    """The touchpoint file is unreadable or has an unknown key or a value of the wrong type."""


@dataclass(frozen=True)
class TouchpointRule:
    categories: frozenset[str] = frozenset()
    exclude_categories: frozenset[str] = frozenset()
    default_scene: str = ""
    repeatable_categories: frozenset[str] = frozenset()
    max_per_category: int = 0
    new_items_per_page: int = 0  # places kept for items added since training, when any qualify
    # Places kept for what goes with the items of the session (a purifier's filters and installation),
    # at most a third of the answer; 0 keeps none.
    complements_per_page: int = 3


# Per touchpoint ("" for [default]): its tag blocks in file order, (tag, the rule for users carrying it).
TagBlocks = dict[str, tuple[tuple[str, TouchpointRule], ...]]


@dataclass(frozen=True)
class TouchpointRules:
    default: TouchpointRule = field(default_factory=TouchpointRule)
    touchpoints: dict[str, TouchpointRule] = field(default_factory=dict)
    tagged: TagBlocks = field(default_factory=dict)

    def for_touchpoint(self, touchpoint: str, tags: frozenset[str] = frozenset()) -> TouchpointRule:
        """The touchpoint's rule, or that of its first tag block whose tag the user carries."""
        known = touchpoint in self.touchpoints
        for tag, rule in self.tagged.get(touchpoint if known else "", ()):
            if tag in tags:
                return rule
        return self.touchpoints[touchpoint] if known else self.default


def _tag_blocks(
    table: dict[str, Any], base: TouchpointRule, where: str
) -> tuple[tuple[str, TouchpointRule], ...]:
    """`[WHERE.tag.TAG]` tables: the rule of `base` with the keys the block sets."""
    blocks = table.get("tag", {})
    if not isinstance(blocks, dict) or not all(isinstance(b, dict) for b in blocks.values()):
        raise TouchpointConfigError(f"{where}.tag: must be tables [{where}.tag.TAG]")
    return tuple((tag, _rule(block, base, f"{where}.tag.{tag}")) for tag, block in blocks.items())


def _rule(table: dict[str, Any], base: TouchpointRule, where: str) -> TouchpointRule:
    if ".tag." not in where:  # a touchpoint's tag blocks are read by _tag_blocks (none inside a block)
        table = {key: value for key, value in table.items() if key != "tag"}
    known = {f.name: f for f in fields(TouchpointRule)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise TouchpointConfigError(f"{where}: unknown key {key!r} (known: {', '.join(known)})")
        default = getattr(TouchpointRule(), key)
        if isinstance(default, frozenset):
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise TouchpointConfigError(f"{where}.{key}: must be a list of strings")
            values[key] = frozenset(value)
        elif isinstance(default, int):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise TouchpointConfigError(f"{where}.{key}: must be a whole number >= 0")
            values[key] = value
        else:
            if not isinstance(value, str):
                raise TouchpointConfigError(f"{where}.{key}: must be a string")
            values[key] = value
    return replace(base, **values)


def parse(document: dict[str, Any]) -> TouchpointRules:
    unknown = set(document) - {"default", "touchpoint"}
    if unknown:
        raise TouchpointConfigError(
            f"unknown table(s) {', '.join(sorted(unknown))}; use [default] and [touchpoint.NAME]"
        )
    default = _rule(document.get("default", {}), TouchpointRule(), "default")
    tables = document.get("touchpoint", {})
    touchpoints = {name: _rule(table, default, f"touchpoint.{name}") for name, table in tables.items()}
    tagged = {"": _tag_blocks(document.get("default", {}), default, "default")}
    tagged.update(
        {name: _tag_blocks(table, touchpoints[name], f"touchpoint.{name}") for name, table in tables.items()}
    )
    return TouchpointRules(default, touchpoints, {name: blocks for name, blocks in tagged.items() if blocks})


def load(path: Path) -> TouchpointRules:
    try:
        return parse(tomllib.loads(path.read_text()))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise TouchpointConfigError(f"{path}: {error}") from error
