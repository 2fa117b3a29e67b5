"""Tag rules (models/audiences/rules.py) as DuckDB SQL over `tag_events` (user_id, item_id, category,
event_type, timestamp in Unix seconds, only events at or before the as-of time), so that the log stays
in the engine (out of core) and only the tagged rows come out.

Every rule becomes one SELECT giving user_id, tag, category (NULL for a rule per user), item_id (NULL
unless per item) and since (Unix seconds: when the tag began to hold)."""

from __future__ import annotations

from models.audiences.rules import TagRule

DAY = 86400.0
KEYS = {"user": ["user_id"], "category": ["user_id", "category"], "item": ["user_id", "category", "item_id"]}


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join("'" + value.replace("'", "''") + "'" for value in values)


def _types(events: tuple[str, ...], at: str = "") -> str:
    return f"{at}event_type IN ({_quoted(events)})" if events else "TRUE"


def _categories(rule: TagRule, at: str = "") -> str:
    return f"{at}category IN ({_quoted(rule.categories)})" if rule.categories else "TRUE"


def _window(rule: TagRule, as_of: float, at: str = "") -> str:
    return f"{at}timestamp > {as_of - rule.within_days * DAY!r}" if rule.within_days else "TRUE"


def _on(keys: list[str], left: str, right: str) -> str:
    return " AND ".join(f"{left}.{k} = {right}.{k}" for k in keys)


def rule_sql(rule: TagRule, as_of: float) -> str:
    """The SELECT of one rule's tagged rows."""
    keys = KEYS[rule.per]
    k = ", ".join(keys)
    ctes = [
        f"matched AS (SELECT {k}, timestamp FROM tag_events "
        f"WHERE {_types(rule.events)} AND {_categories(rule)} AND {_window(rule, as_of)})"
    ]
    w = rule.without
    if w is not None:
        ctes.insert(
            0,
            f"forbidden AS (SELECT {k}, max(timestamp) AS t FROM tag_events "
            f"WHERE {_types(w.events)} AND {_categories(rule)} GROUP BY {k})",
        )
        if w.since_match:  # only the matches after the group's last forbidden event count
            ctes[1] = (
                f"matched AS (SELECT {', '.join('e.' + x for x in keys)}, e.timestamp FROM tag_events e "
                f"LEFT JOIN forbidden f ON {_on(keys, 'e', 'f')} "
                f"WHERE {_types(rule.events, 'e.')} AND {_categories(rule, 'e.')} "
                f"AND {_window(rule, as_of, 'e.')} AND (f.t IS NULL OR e.timestamp > f.t))"
            )
    ctes.append(_groups(rule, k))
    since, where, joins = "g.nth", ["TRUE"], []
    if w is not None and w.within_days is not None:
        span = w.within_days * DAY
        joins.append(f"LEFT JOIN forbidden f ON {_on(keys, 'g', 'f')}")
        where.append(f"(f.t IS NULL OR f.t <= {as_of - span!r})")
        since = f"greatest(g.nth, coalesce(f.t + {span!r}, g.nth))"
    if rule.first_within_days is not None:
        where.append(f"g.first > {as_of - rule.first_within_days * DAY!r}")
    if rule.overdue:
        ctes.extend(_intervals(rule, k, keys))
        joins.append(f"JOIN intervals i ON {_on(keys, 'g', 'i')}")
        where.append(f"g.last + i.interval_days * {DAY!r} < {as_of!r}")
        since = f"g.last + i.interval_days * {DAY!r}"
    category = "g.category" if "category" in keys else "CAST(NULL AS VARCHAR)"
    item = "g.item_id" if "item_id" in keys else "CAST(NULL AS VARCHAR)"
    return (
        f"WITH {', '.join(ctes)} SELECT g.user_id, '{rule.name}' AS tag, {category} AS category, "
        f"{item} AS item_id, {since} AS since FROM groups g {' '.join(joins)} WHERE {' AND '.join(where)}"
    )


def _groups(rule: TagRule, k: str) -> str:
    """Per group: how many matches, the first, the last, and the at_least-th (when the count held)."""
    if rule.at_least == 1:
        return (
            f"groups AS (SELECT {k}, min(timestamp) AS first, max(timestamp) AS last, "
            f"min(timestamp) AS nth FROM matched GROUP BY {k})"
        )
    return (
        f"ranked AS (SELECT {k}, timestamp, row_number() OVER (PARTITION BY {k} ORDER BY timestamp) AS k "
        f"FROM matched), groups AS (SELECT {k}, min(timestamp) AS first, max(timestamp) AS last, "
        f"max(CASE WHEN k = {rule.at_least} THEN timestamp END) AS nth FROM ranked GROUP BY {k} "
        f"HAVING count(*) >= {rule.at_least})"
    )


def _intervals(rule: TagRule, k: str, keys: list[str]) -> list[str]:
    """The usual interval per group, in days: the median gap between the group's distinct event days,
    or, for a group with one day, the median gap of every user's same group (the category's, the
    item's, or everyone's for a rule per user)."""
    pooled = [x for x in keys if x != "user_id"]
    pooled_on = " AND ".join(f"d.{x} = p.{x}" for x in pooled) or "TRUE"
    pooled_by = f"GROUP BY {', '.join(pooled)}" if pooled else ""
    pooled_keys = "".join(f"{x}, " for x in pooled)
    return [
        f"days AS (SELECT DISTINCT {k}, floor(timestamp / {DAY!r}) AS day FROM matched)",
        f"gaps AS (SELECT {k}, day - lag(day) OVER (PARTITION BY {k} ORDER BY day) AS gap FROM days)",
        f"own AS (SELECT {k}, median(gap) AS interval_days FROM gaps WHERE gap IS NOT NULL GROUP BY {k})",
        f"pooled AS (SELECT {pooled_keys}median(gap) AS interval_days FROM gaps "
        f"WHERE gap IS NOT NULL {pooled_by})",
        f"intervals AS (SELECT {', '.join('d.' + x for x in keys)}, "
        f"coalesce(o.interval_days, p.interval_days) AS interval_days "
        f"FROM (SELECT DISTINCT {k} FROM days) d LEFT JOIN own o ON {_on(keys, 'd', 'o')} "
        f"JOIN pooled p ON {pooled_on})",
    ]


def tags_sql(rules: list[TagRule], as_of: float) -> str:
    """Every rule's rows, one row per (user, tag, category) with the earliest since and the items."""
    union = " UNION ALL ".join(f"({rule_sql(rule, as_of)})" for rule in rules)
    return (
        f"SELECT user_id, tag, category, min(since) AS since, "
        f"coalesce(list(DISTINCT item_id) FILTER (WHERE item_id IS NOT NULL), []::VARCHAR[]) AS item_ids "
        f"FROM ({union}) t GROUP BY user_id, tag, category"
    )
