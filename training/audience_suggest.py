"""Suggested items per (user, tag): what the serving recommender (models/recommend) answers for the user
in the tag's scene — its category as the filter, the tag's items (an abandoned cart) as the session —
with the tag's own in-stock items first. Without a model, or past `recommender_limit` rows of one tag,
the in-stock items of the tag's category by popularity in the log stand in (the same for everyone)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from models import versions
from models.recommend.artifact import FORMAT, RecommenderArtifact
from models.recommend.query import ItemFilter, Query
from models.recommend.recommender import Recommender
from training.engines import Engine


def popular(engine: Engine, items: pd.DataFrame, n: int) -> dict[str, list[str]]:
    """The n most popular in-stock items (summed event weights in `tag_events`) per category, and over
    every category under ""."""
    engine.register("stocked", items.loc[items["in_stock"], ["item_id"]].astype(str))
    ranked = engine.frame(
        """SELECT e.item_id, e.category, sum(w.weight) AS w FROM tag_events e
           JOIN event_weights w ON w.event_type = e.event_type JOIN stocked s ON s.item_id = e.item_id
           GROUP BY e.item_id, e.category ORDER BY w DESC, e.item_id"""
    )
    best: dict[str, list[str]] = {"": ranked["item_id"].head(n).tolist()}
    for category, group in ranked.groupby("category", sort=False):
        best[str(category)] = group["item_id"].head(n).tolist()
    return best


def latest_model(model_dir: Path) -> Recommender:
    """The version the service would serve: the newest promoted one."""
    for name in reversed(versions.list_versions(model_dir)):
        manifest = versions.read_manifest(model_dir / name, verify=False)
        if manifest.get("promoted"):
            manifest = versions.read_manifest(model_dir / name, verify=True, expected_format=FORMAT)
            return Recommender(RecommenderArtifact.load(model_dir / name), name, None, manifest)
    raise versions.VersionError(f"{model_dir}: no promoted model version")


class Suggester:
    def __init__(
        self,
        items: pd.DataFrame,
        popular: dict[str, list[str]],
        model_dir: Path | None,
        n: int,
        recommender_limit: int,
    ) -> None:
        """n: items per (user, tag); recommender_limit: rows per tag the recommender answers."""
        self._stocked = set(items.loc[items["in_stock"], "item_id"].astype(str))
        self._popular, self._n, self._limit = popular, n, recommender_limit
        self._model = latest_model(model_dir) if model_dir is not None else None
        self.model_version = self._model.version if self._model else None
        self._categories = set(self._model.describe().categories) if self._model else set()

    def suggest(self, tags: pd.DataFrame) -> list[list[str]]:
        """One list per row of `tags` (user_id, tag, category, item_ids)."""
        answered = tags.groupby("tag").cumcount().to_numpy() < self._limit
        rows = zip(tags["user_id"], tags["category"], tags["item_ids"], answered, strict=True)
        return [self._one(user, category, own, asked) for user, category, own, asked in rows]

    def _one(self, user: str, category: Any, own: Any, asked: bool) -> list[str]:
        category = "" if pd.isna(category) else str(category)
        first = [str(i) for i in own if i in self._stocked]
        if self._model is not None and asked:
            rest = self._recommended(user, category, first)
        else:
            rest = self._popular.get(category, [])
        return list(dict.fromkeys([*first, *rest]))[: self._n]

    def _recommended(self, user: str, category: str, session: list[str]) -> list[str]:
        assert self._model is not None
        known = category in self._categories
        query = Query(
            user_id=user,
            limit=self._n,
            recent_item_ids=tuple(i for i in session if self._model.find(i) is not None),
            filter=ItemFilter(include_categories=frozenset([category]) if known else frozenset()),
        )
        return [scored.item_id for scored in self._model.recommend(query)]
