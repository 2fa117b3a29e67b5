"""The limits every request keeps, in one place (docs/api.md's "Limits" table lists them), and the checks
that turn a request's strings and lists into plain values within them.

Numbers in range (coordinates, times, weights, matrices) are the models' own validation
(`models.dispatch.problem.validate`, the recommender's query checks); this module bounds what the
wire format leaves open: the length of strings and the size of lists and maps. Past a size that one
call may be, the answer is RESOURCE_EXHAUSTED (SizeError), otherwise INVALID_ARGUMENT (FieldError).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from models.errors import FieldError, SizeError

MAX_TEXT_BYTES = 256  # ids, skills, categories, scenes, touchpoints, context keys and values (UTF-8)
MAX_ITEM_IDS = 1000  # exclude_item_ids, recent_item_ids
MAX_CATEGORIES = 100  # each category list of a filter
MAX_CONTEXT_ENTRIES = 32
MAX_SKILLS = 64  # a job's required skills, a technician's skills
MAX_JOBS = 20_000  # per AssignJobs call (and jobs × technicians <= models.dispatch.problem.MAX_PAIRS)
MAX_TECHNICIANS = 10_000
MAX_RECOMMEND_LIMIT = 500
MAX_RANK_LIMIT = 1000
MAX_BATCH = 1000  # items per UpsertItems / DeleteItems / GetItems call, events per RecordEvents call
MAX_TAGS = 32  # an item's tags
MAX_PRICE = 1e9  # CNY


def text(value: str, field: str, required: bool = False) -> str:
    if required and not value:
        raise FieldError(field, "must not be empty")
    if len(value) > MAX_TEXT_BYTES // 4 and len(value.encode()) > MAX_TEXT_BYTES:
        raise FieldError(field, f"is longer than {MAX_TEXT_BYTES} bytes")
    return value


def texts(values: Iterable[str], field: str, most: int) -> tuple[str, ...]:
    result = tuple(values)
    if len(result) > most:
        raise FieldError(field, f"at most {most} values, got {len(result)}")
    lengths = tuple(map(len, result))
    if result and (min(lengths) == 0 or max(lengths) > MAX_TEXT_BYTES // 4):
        # Only now, value by value (in C above, as ids come by the hundred): the first bad one is named.
        for i, value in enumerate(result):
            text(value, f"{field}[{i}]", required=True)
    return result


def mapping(values: Mapping[str, str], field: str, most: int) -> dict[str, str]:
    if len(values) > most:
        raise FieldError(field, f"at most {most} entries, got {len(values)}")
    for key, value in values.items():
        text(key, f"{field}.key", required=True)
        text(value, f"{field}[{key}]")
    return dict(values)


def amount(value: float, field: str) -> float:
    """A price or an order's value: a finite number from 0 to MAX_PRICE."""
    if not math.isfinite(value) or not 0 <= value <= MAX_PRICE:
        raise FieldError(field, f"must be a number from 0 to {MAX_PRICE:g}, got {value}")
    return value


def batch(size: int, field: str) -> None:
    """A batch of items or events: at least one, at most MAX_BATCH."""
    if size == 0:
        raise FieldError(field, "must not be empty")
    count(size, field, MAX_BATCH)


def count(size: int, field: str, most: int) -> None:
    """A list longer than one call may carry: RESOURCE_EXHAUSTED, naming the field."""
    if size > most:
        raise SizeError(field, f"at most {most:,} per call, got {size:,}; split the request")


def bounded(value: int, field: str, most: int, zero_means: str) -> int:
    if not 0 <= value <= most:
        raise FieldError(field, f"must be between 1 and {most} (0 means {zero_means}), got {value}")
    return value
