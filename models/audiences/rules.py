"""Tag rules: what a tag means, read from TOML (the language is documented in docs/audiences.md).

A rule counts a user's events of some types (and categories) per user, per category or per item, in a
window ending at the as-of time, and may add "and no ..." (`without`), "the first one is recent"
(`first_within_days`) or "the last one is overdue against the usual interval" (`overdue`). Anything the
parser does not know, or a combination it cannot evaluate, is refused with the rule and key named.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_FILE = Path(__file__).with_name("default_tags.toml")
PER = ("user", "category", "item")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_RULE_KEYS = {
    "description",
    "per",
    "events",
    "categories",
    "within_days",
    "at_least",
    "first_within_days",
    "overdue",
    "without",
}
_WITHOUT_KEYS = {"events", "within_days", "since_match"}


class RuleError(ValueError):
    """A tag file that cannot be used: the message names the file, the rule and the key."""


@dataclass(frozen=True)
class Without:
    """ "And no ...": none of `events` (every type when empty) for the same user/category/item, either in
    the last `within_days` or (`since_match`) after the matched events (only later matches count)."""

    events: tuple[str, ...] = ()
    within_days: float | None = None
    since_match: bool = False


@dataclass(frozen=True)
class TagRule:
    name: str
    description: str = ""
    per: str = "user"
    events: tuple[str, ...] = ()  # every event type when empty
    categories: tuple[str, ...] = ()  # every category when empty
    within_days: float | None = None  # the whole history when None
    at_least: int = 1
    first_within_days: float | None = None
    overdue: bool = False
    without: Without | None = None

    def event_types(self) -> set[str]:
        """The event types the rule names (the job accepts them in the log)."""
        return set(self.events) | set(self.without.events if self.without else ())


def parse(text: str, source: str = "tags") -> list[TagRule]:
    """The rules of a TOML document: one `[tags.NAME]` table per tag."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RuleError(f"{source}: not TOML: {error}") from error
    unknown = set(document) - {"tags"}
    if unknown:
        raise RuleError(f"{source}: unknown key {sorted(unknown)[0]!r} (rules go in [tags.NAME])")
    tags = document.get("tags")
    if not isinstance(tags, dict) or not tags:
        raise RuleError(f"{source}: no [tags.NAME] table")
    return [_rule(name, body, f"{source}: tag {name!r}") for name, body in tags.items()]


def load(path: Path | None = None) -> list[TagRule]:
    """The rules of a file; the default file shipped with Shifu when None."""
    path = path or DEFAULT_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RuleError(f"{path}: unreadable: {error}") from error
    return parse(text, str(path))


def _rule(name: str, body: Any, where: str) -> TagRule:
    if not _NAME.match(name):
        raise RuleError(f"{where}: a tag name is lower_snake_case, up to 63 characters")
    if not isinstance(body, dict):
        raise RuleError(f"{where}: a tag is a table of keys")
    _known(body, _RULE_KEYS, where)
    without = body.get("without")
    if without is not None and not isinstance(without, dict):
        raise RuleError(f"{where}: key 'without' is a table (events, within_days, since_match)")
    rule = TagRule(
        name=name,
        description=_text(body, "description", where),
        per=_choice(body, "per", where),
        events=_names(body, "events", where),
        categories=_names(body, "categories", where),
        within_days=_days(body, "within_days", where),
        at_least=_count(body, "at_least", where),
        first_within_days=_days(body, "first_within_days", where),
        overdue=_flag(body, "overdue", where),
        without=None if without is None else _without(without, f"{where}: key 'without'"),
    )
    _evaluable(rule, where)
    return rule


def _without(body: dict[str, Any], where: str) -> Without:
    _known(body, _WITHOUT_KEYS, where)
    without = Without(
        _names(body, "events", where), _days(body, "within_days", where), _flag(body, "since_match", where)
    )
    if (without.within_days is None) == (not without.since_match):
        raise RuleError(f"{where}: give exactly one of 'within_days' and 'since_match = true'")
    return without


def _evaluable(rule: TagRule, where: str) -> None:
    """Combinations the SQL cannot give one meaning to."""
    if rule.first_within_days is not None and rule.within_days is not None:
        raise RuleError(f"{where}: key 'first_within_days' looks at the whole history; drop 'within_days'")
    if rule.overdue and rule.per == "user" and not rule.events:
        raise RuleError(f"{where}: key 'overdue' needs 'events' (the repeated event, e.g. order)")
    if rule.overdue and rule.without is not None:
        raise RuleError(f"{where}: key 'overdue' cannot be combined with 'without'")


def _known(body: dict[str, Any], keys: set[str], where: str) -> None:
    unknown = sorted(set(body) - keys)
    if unknown:
        raise RuleError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(keys))})")


def _text(body: dict[str, Any], key: str, where: str) -> str:
    value = body.get(key, "")
    if not isinstance(value, str):
        raise RuleError(f"{where}: key {key!r} is a string")
    return value


def _choice(body: dict[str, Any], key: str, where: str) -> str:
    value = body.get(key, "user")
    if value not in PER:
        raise RuleError(f"{where}: key {key!r} is one of {', '.join(PER)}, got {value!r}")
    return str(value)


def _names(body: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise RuleError(f"{where}: key {key!r} is a list of non-empty strings")
    return tuple(sorted({v.strip().lower() if key == "events" else v.strip() for v in value}))


def _days(body: dict[str, Any], key: str, where: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 36500:
        raise RuleError(f"{where}: key {key!r} is a number of days in (0, 36500], got {value!r}")
    return float(value)


def _count(body: dict[str, Any], key: str, where: str) -> int:
    value = body.get(key, 1)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
        raise RuleError(f"{where}: key {key!r} is a whole number from 1, got {value!r}")
    return value


def _flag(body: dict[str, Any], key: str, where: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise RuleError(f"{where}: key {key!r} is true or false, got {value!r}")
    return value
