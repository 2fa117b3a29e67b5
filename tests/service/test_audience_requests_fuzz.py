"""Random ListAudience paging input: a token is either the one this query made (and round-trips) or
refused as a FieldError naming page_token; page sizes out of range name page_size. Never another error."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from models.errors import FieldError
from service.audience_handler import MAX_PAGE_SIZE, after_user, page_size, token


@given(st.text(max_size=20), st.text(max_size=8), st.text(max_size=8), st.text(max_size=20))
def test_random_tokens_are_read_or_refused_naming_page_token(
    raw: str, tag: str, category: str, user: str
) -> None:
    assert after_user(token(tag, category, user), tag, category) == user
    try:
        after_user(raw, tag, category)
    except FieldError as error:
        assert error.field == "page_token"


@given(st.integers(-(2**31), 2**31 - 1))
def test_page_sizes_are_kept_or_refused_naming_page_size(value: int) -> None:
    try:
        size = page_size(value)
    except FieldError as error:
        assert error.field == "page_size" and not 0 <= value <= MAX_PAGE_SIZE
    else:
        assert 1 <= size <= MAX_PAGE_SIZE
