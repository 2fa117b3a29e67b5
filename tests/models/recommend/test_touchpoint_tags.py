"""Touchpoint rule blocks for users carrying a tag: the touchpoint's rule with the block's keys changed,
the first block whose tag the user carries, and refusals naming the block."""

from __future__ import annotations

import tomllib

import pytest

from models.recommend.touchpoints import TouchpointConfigError, parse

RULES = """
[default]
max_per_category = 1

[default.tag.dormant]
max_per_category = 4

[touchpoint.home_banner]
categories = ["sofa", "bed"]

[touchpoint.home_banner.tag.refill_due]
categories = ["purifier_filter"]

[touchpoint.home_banner.tag.repeat_buyer]
max_per_category = 3
"""


def test_a_tag_block_changes_only_its_keys_for_users_with_the_tag() -> None:
    rules = parse(tomllib.loads(RULES))
    plain = rules.for_touchpoint("home_banner")
    assert plain.categories == {"sofa", "bed"} and plain.max_per_category == 1
    refill = rules.for_touchpoint("home_banner", frozenset({"refill_due", "repeat_buyer"}))
    assert refill.categories == {"purifier_filter"} and refill.max_per_category == 1  # first block wins
    buyer = rules.for_touchpoint("home_banner", frozenset({"repeat_buyer"}))
    assert buyer.categories == {"sofa", "bed"} and buyer.max_per_category == 3
    assert (
        rules.for_touchpoint("home_banner", frozenset({"dormant"})) == plain
    )  # default's blocks: default only
    assert rules.for_touchpoint("elsewhere", frozenset({"dormant"})).max_per_category == 4
    assert rules.for_touchpoint("elsewhere", frozenset({"refill_due"})) == rules.default


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[touchpoint.a.tag.t]\nbogus = 1\n", "touchpoint.a.tag.t: unknown key 'bogus'"),
        ("[touchpoint.a]\ntag = 3\n", "touchpoint.a.tag: must be tables"),
        ("[touchpoint.a.tag.t.tag.u]\nmax_per_category = 1\n", "touchpoint.a.tag.t: unknown key 'tag'"),
        ("[touchpoint.a.tag.t]\nmax_per_category = -1\n", "touchpoint.a.tag.t.max_per_category"),
    ],
)
def test_bad_tag_blocks_are_refused_naming_them(text: str, message: str) -> None:
    with pytest.raises(TouchpointConfigError) as refused:
        parse(tomllib.loads(text))
    assert message in str(refused.value)
