"""The holdout of the checked events (training/event_checks.py), as SQL run unchanged by either engine.

Holdout (evaluate.py explains the queries): per user, among the positive events (a click or heavier by
default), the latest `fraction` (rounded up) are the test set; the user's training events are those before
the first test event; users with fewer than two positive events stay whole in training. Done twice: the
test split of everything (part `test`) and, within what is left, the validation split (part
`validation`): `train` is what the validation models learn from.
"""

from __future__ import annotations

from training.engines import Engine

ORDER_IN_USER = "timestamp, item_id, event_type, scene, touchpoint, recommendation_id, value_text"
# The columns `events` keeps of each valid event.
FIELDS = (
    "user_id, item_id, item_code, event_type, weight, timestamp, touchpoint, scene, value, value_text, "
    "recommendation_id"
)


def split(engine: Engine, positive_weight: float, fraction: float) -> None:
    """`events`: the valid events with their `part` (module docstring); the tables of checking go."""
    first = _holdout("SELECT * FROM valid WHERE copy = 1", positive_weight, fraction)
    engine.table("split_test", first)
    second = _holdout(f"SELECT {FIELDS} FROM split_test WHERE NOT cut", positive_weight, fraction)
    engine.table(
        "events",
        f"""
            SELECT {FIELDS}, CASE WHEN is_test THEN 'validation' WHEN cut THEN 'gap' ELSE 'train' END AS part
            FROM ({second}) s
            UNION ALL
            SELECT {FIELDS}, CASE WHEN is_test THEN 'test' ELSE 'after' END AS part
            FROM split_test WHERE cut
            """,
    )
    engine.drop("split_test")
    engine.drop("checked")
    engine.drop("valid")


def _holdout(source: str, positive_weight: float, fraction: float) -> str:
    """`source` with `is_test` (among the user's latest positives) and `cut` (at or after the user's first
    test event)."""
    positive = f"CASE WHEN weight >= {positive_weight!r} THEN 1 ELSE 0 END"
    in_user = (
        f"PARTITION BY user_id ORDER BY {ORDER_IN_USER} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
    )
    return f"""
        SELECT {FIELDS}, is_test,
               max(CASE WHEN is_test THEN 1 ELSE 0 END) OVER ({in_user}) = 1 AS cut
        FROM (
            SELECT *, {positive} = 1 AND total >= 2 AND so_far > total - ceil({fraction!r} * total) AS is_test
            FROM (
                SELECT *, sum({positive}) OVER ({in_user}) AS so_far,
                       sum({positive}) OVER (PARTITION BY user_id) AS total
                FROM ({source}) s) counted) flagged
    """
