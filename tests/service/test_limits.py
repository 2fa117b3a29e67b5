"""The request limits: a list of ids is accepted exactly when every value is non-empty and at most
MAX_TEXT_BYTES of UTF-8, and a refusal names the first bad value's index."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.errors import FieldError
from service import limits

WIDE = "\U0001f600"  # four bytes of UTF-8


def _first_bad(values: list[str]) -> int | None:
    for i, value in enumerate(values):
        if not value or len(value.encode()) > limits.MAX_TEXT_BYTES:
            return i
    return None


@given(
    st.lists(
        st.one_of(st.text(max_size=80), st.text(alphabet=[WIDE, "a", "é"], max_size=80), st.just("")),
        max_size=20,
    )
)
def test_a_list_of_texts_is_refused_exactly_at_its_first_bad_value(values: list[str]) -> None:
    bad = _first_bad(values)
    if bad is None:
        assert limits.texts(values, "exclude_item_ids", limits.MAX_ITEM_IDS) == tuple(values)
    else:
        with pytest.raises(FieldError) as refused:
            limits.texts(values, "exclude_item_ids", limits.MAX_ITEM_IDS)
        assert refused.value.field == f"exclude_item_ids[{bad}]"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        (["i1", "", "i3"], "recent_item_ids[1]"),
        (["i1", WIDE * 65], "recent_item_ids[1]"),  # 65 characters, 260 bytes
        (["a" * 257], "recent_item_ids[0]"),
    ],
)
def test_a_bad_id_is_named_by_its_index(values: list[str], field: str) -> None:
    with pytest.raises(FieldError) as refused:
        limits.texts(values, "recent_item_ids", limits.MAX_ITEM_IDS)
    assert refused.value.field == field


def test_ids_up_to_the_byte_limit_pass() -> None:
    values = [WIDE * 64, "a" * 256, "x"]  # 256 bytes each, then one
    assert limits.texts(values, "recent_item_ids", limits.MAX_ITEM_IDS) == tuple(values)


def test_too_many_ids_are_refused_by_count() -> None:
    with pytest.raises(FieldError, match="at most 2 values, got 3"):
        limits.texts(["a", "b", "c"], "exclude_item_ids", 2)
