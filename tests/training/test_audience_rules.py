"""The tag rule language: the default file, refusals naming the rule and key, and random documents
(read into rules that the SQL evaluates, or refused with a RuleError — never another exception)."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.audiences import rules
from training.audience_sql import tags_sql


def test_default_file_has_the_six_issue_tags() -> None:
    names = [rule.name for rule in rules.load()]
    assert names == [
        "abandoned_cart",
        "viewed_not_ordered",
        "refill_due",
        "repeat_buyer",
        "dormant",
        "new_customer",
    ]
    refill = {rule.name: rule for rule in rules.load()}["refill_due"]
    assert set(refill.categories) == {"purifier_filter", "cleaning"} and refill.overdue


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[tags.mine]\nevents = ["order"]\nwindow_days = 3\n', "tag 'mine': unknown key 'window_days'"),
        ('[tags.mine]\nper = "city"\n', "tag 'mine': key 'per' is one of user, category, item"),
        ("[tags.mine]\nat_least = 0\n", "tag 'mine': key 'at_least' is a whole number"),
        ("[tags.mine]\nwithin_days = -1\n", "tag 'mine': key 'within_days' is a number of days"),
        ('[tags.mine]\nwithout = { events = ["order"] }\n', "tag 'mine': key 'without': give exactly one"),
        ("[tags.mine]\nwithout = { since = 3 }\n", "tag 'mine': key 'without': unknown key 'since'"),
        ("[tags.mine]\nfirst_within_days = 7\nwithin_days = 7\n", "tag 'mine': key 'first_within_days'"),
        ("[tags.mine]\noverdue = true\n", "tag 'mine': key 'overdue' needs 'events'"),
        ("[tags.Mine]\n", "tag 'Mine': a tag name is lower_snake_case"),
        ("[audience.mine]\n", "unknown key 'audience'"),
        ("tags = 3\n", "no [tags.NAME] table"),
        ("[tags.mine\n", "not TOML"),
    ],
)
def test_refusals_name_the_rule_and_the_key(text: str, message: str) -> None:
    with pytest.raises(rules.RuleError, match=r"^mine\.toml: ") as refused:
        rules.parse(text, "mine.toml")
    assert message in str(refused.value)


_values = st.one_of(
    st.integers(-5, 200),
    st.floats(allow_nan=True),
    st.booleans(),
    st.text(max_size=8),
    st.lists(st.sampled_from(["order", "view", "cart", "", "sofa", "it's"]), max_size=3),
    st.sampled_from(["user", "category", "item"]),
)
_keys = st.sampled_from([*sorted(rules._RULE_KEYS - {"without"}), "bogus"])
_without = st.dictionaries(
    st.sampled_from(["events", "within_days", "since_match", "x"]), _values, max_size=3
)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=5), st.one_of(st.none(), _without))
def test_random_rule_files_are_read_and_evaluated_or_refused(
    body: dict[str, object], without: object
) -> None:
    if without is not None:
        body = {**body, "without": without}
    text = "[tags.random]\n" + "".join(f"{key} = {_toml(value)}\n" for key, value in body.items())
    try:
        parsed = rules.parse(text, "random.toml")
    except rules.RuleError as error:
        assert str(error).startswith("random.toml: ")
        return
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE tag_events AS SELECT 'u' AS user_id, 'i' AS item_id, 'sofa' AS category, "
        "'order' AS event_type, CAST(t AS DOUBLE) AS timestamp FROM range(0, 10 * 86400, 86400) r(t)"
    )
    con.execute(tags_sql(parsed, 20 * 86400.0)).fetchall()
