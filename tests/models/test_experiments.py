"""The experiments file: what it accepts, what it refuses (naming the file and the key), and how users
are assigned to arms."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import experiments
from models.experiments import ExperimentsError, parse
from models.recommend.touchpoints import TouchpointRule

GOOD = """
[experiment.home_feed_new_blend]
touchpoint = "home_feed"
primary_metric = "conversion"
horizon_days = 14
min_users_per_arm = 500
[[experiment.home_feed_new_blend.arms]]
name = "control"
weight = 1
[[experiment.home_feed_new_blend.arms]]
name = "candidate"
weight = 3
version = "20261201T000000000000Z-abcdef"
components = ["ease", "als"]
max_per_category = 2
categories = ["sofa", "bed"]

[experiment.cart_reminder]
touchpoint = "cart"
[[experiment.cart_reminder.arms]]
name = "a"
[[experiment.cart_reminder.arms]]
name = "b"
"""


def written(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "experiments.toml"
    path.write_text(text)
    return path


def test_a_good_file_is_read_with_every_key(tmp_path: Path) -> None:
    found = experiments.load(written(tmp_path, GOOD))
    blend = found.by_name("home_feed_new_blend")
    assert blend is not None and found.for_touchpoint("HOME_FEED") is blend
    assert (blend.primary_metric, blend.horizon_days, blend.min_users_per_arm) == ("conversion", 14, 500)
    control, candidate = blend.arms
    assert blend.control is control and control.version == "" and control.components == ()
    assert candidate.weight == 3.0 and candidate.components == ("ease", "als")
    assert candidate.version == "20261201T000000000000Z-abcdef"
    rule = candidate.rule(TouchpointRule(complements_per_page=1))
    assert rule.max_per_category == 2 and rule.categories == {"sofa", "bed"}
    assert rule.complements_per_page == 1  # what the arm does not override stays the touchpoint's
    cart = found.by_name("cart_reminder")
    assert cart is not None and cart.primary_metric == "ctr" and cart.horizon_days is None
    assert found.for_touchpoint("search") is None


def arms(*tables: str, extra: str = "") -> str:
    arm_tables = "".join(f"[[experiment.x.arms]]\n{table}\n" for table in tables)
    return f'[experiment.x]\ntouchpoint = "home_feed"\n{extra}\n{arm_tables}'


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (arms('name = "a"', 'name = "b"\ncolour = "red"'), "experiment.x.arms[1]: unknown key(s) colour"),
        (arms('name = "a"', 'name = "b"', extra="owner = 1"), "experiment.x: unknown key(s) owner"),
        ("[experiments.x]\n", "unknown table(s) experiments"),
        (arms('name = "a"', 'name = "b"\nweight = 0'), "experiment.x.arms[1].weight: must be a number > 0"),
        (arms('name = "a"\nweight = -1', 'name = "b"'), "experiment.x.arms[0].weight"),
        (arms('name = "a"', 'name = "b"\nweight = "1"'), "experiment.x.arms[1].weight"),
        (arms("weight = 1", 'name = "b"'), "experiment.x.arms[0].name: every arm needs a name"),
        (arms('name = ""', 'name = "b"'), "experiment.x.arms[0].name"),
        (arms('name = "a"', 'name = "a"'), "experiment.x.arms[1].name: 'a' appears twice"),
        (arms('name = "a"'), "experiment.x.arms: needs at least two arms"),
        (
            arms('name = "a"', 'name = "b"\ncomponents = ["ease", "svd"]'),
            "experiment.x.arms[1].components[1]: unknown model 'svd'",
        ),
        (arms('name = "a"', 'name = "b"\ncomponents = []'), "experiment.x.arms[1].components"),
        (arms('name = "a"', 'name = "b"\nversion = 3'), "experiment.x.arms[1].version"),
        (arms('name = "a"', 'name = "b"\nmax_per_category = -2'), "experiment.x.arms[1].max_per_category"),
        (arms('name = "a"', 'name = "b"\ncategories = "sofa"'), "experiment.x.arms[1].categories"),
        (arms('name = "a"', 'name = "b"', extra='primary_metric = "clicks"'), "experiment.x.primary_metric"),
        (arms('name = "a"', 'name = "b"', extra="horizon_days = 0"), "experiment.x.horizon_days"),
        (arms('name = "a"', 'name = "b"', extra="min_users_per_arm = 1.5"), "experiment.x.min_users_per_arm"),
        (
            arms('name = "a"', 'name = "b"')
            + '[experiment.y]\ntouchpoint = "Home_Feed"\n'
            + '[[experiment.y.arms]]\nname = "a"\n[[experiment.y.arms]]\nname = "b"\n',
            "experiment.y.touchpoint: 'Home_Feed' already has experiment 'x'",
        ),
        ('[experiment.x]\ntouchpoint = ""\n', "experiment.x.touchpoint"),
        ("[experiment.x\n", "experiments.toml"),
    ],
)
def test_a_bad_file_is_refused_naming_the_file_and_key(tmp_path: Path, text: str, named: str) -> None:
    path = written(tmp_path, text)
    with pytest.raises(ExperimentsError) as refused:
        experiments.load(path)
    assert str(refused.value).startswith(str(path))
    assert named in str(refused.value)


def test_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ExperimentsError, match=r"absent\.toml"):
        experiments.load(tmp_path / "absent.toml")


def two_experiments(tmp_path: Path, weights: tuple[int, int] = (1, 1)) -> experiments.Experiments:
    a, b = weights
    return experiments.load(
        written(
            tmp_path,
            f'[experiment.one]\ntouchpoint = "t1"\n[[experiment.one.arms]]\nname = "c"\nweight = {a}\n'
            f'[[experiment.one.arms]]\nname = "t"\nweight = {b}\n'
            '[experiment.two]\ntouchpoint = "t2"\n[[experiment.two.arms]]\nname = "c"\n'
            '[[experiment.two.arms]]\nname = "t"\n',
        )
    )


USERS = [f"u{n:05d}" for n in range(10_000)]


def test_assignment_is_sticky_and_independent_across_experiments(tmp_path: Path) -> None:
    found = two_experiments(tmp_path)
    one, two = found.experiments
    assert [one.arm_of(u).name for u in USERS] == [one.arm_of(u).name for u in USERS]
    table = collections.Counter((one.arm_of(u).name, two.arm_of(u).name) for u in USERS)
    # Chi-square of the 2x2 cross-tab against independence (1 degree of freedom: 10.83 is p = 0.001).
    rows = {a: sum(v for (r, _), v in table.items() if r == a) for a in "ct"}
    cols = {b: sum(v for (_, c), v in table.items() if c == b) for b in "ct"}
    chi2 = sum(
        (table[(a, b)] - rows[a] * cols[b] / len(USERS)) ** 2 / (rows[a] * cols[b] / len(USERS))
        for a in "ct"
        for b in "ct"
    )
    assert chi2 < 10.83, table


def test_assignment_follows_the_weights(tmp_path: Path) -> None:
    one = two_experiments(tmp_path, (1, 3)).experiments[0]
    share = sum(one.arm_of(u).name == "t" for u in USERS) / len(USERS)
    assert abs(share - 0.75) < 0.02  # 4.6 standard deviations of a binomial share at n = 10,000


def test_the_hash_is_stable_across_processes() -> None:
    # A fixed value: Python's hash() would differ with PYTHONHASHSEED from one process to the next.
    assert experiments.unit_hash("home_feed_new_blend", "u00042") == 0.9858645053296551
    assert 0.0 <= experiments.unit_hash("x", "") < 1.0
    assert experiments.unit_hash("a", "bc") != experiments.unit_hash("ab", "c")


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 5) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
_KEYS = st.sampled_from(
    ["touchpoint", "arms", "name", "weight", "version", "components", "primary_metric", "horizon_days",
     "min_users_per_arm", "max_per_category", "categories", "bogus"]
)  # fmt: skip
_ARM = st.dictionaries(_KEYS, _VALUES, max_size=6)
_EXPERIMENT = st.dictionaries(_KEYS, _VALUES | st.lists(_ARM, max_size=3), max_size=6)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), _EXPERIMENT, max_size=3) | _VALUES)
def test_any_document_is_read_or_refused_with_a_message_never_crashes(experiments_table: object) -> None:
    """Random documents (the shapes TOML gives, and worse): an Experiments or an ExperimentsError."""
    try:
        parse({"experiment": experiments_table}, "random.toml")
    except ExperimentsError as error:
        assert str(error).startswith("random.toml")
