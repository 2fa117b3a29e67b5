"""Popularity: weighted event counts per item in [0, 1], overall, per scene and per city, scored as
log(1 + 1000 p) (popularity is heavy-tailed). Every blend may fall back on it, and it gives the
reasons "popular in the scene / in the city" and "fits the scene"."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

from models.progress import Progress, silent
from models.recommend.component import (
    Component,
    QueryContext,
    Reason,
    ReasonCode,
    TrainingData,
    expect_shapes,
)

RESOLUTION = 1000.0  # popularity p in [0, 1] is scored as log(1 + 1000 p)
SCENE_FIT_SHARE = 0.05  # an item among the scene's most popular fraction of the catalog "fits the scene"


@dataclass(frozen=True)
class PopularityParams:
    """Nothing to tune: event weights and time decay are the training job's."""


def _unit(values: np.ndarray) -> np.ndarray:
    top = values.max() if values.size else 0.0
    return (values / top if top > 0 else values).astype(np.float32)


def _by(data: TrainingData, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(names, names × items): weighted event counts within each non-empty value of `key`, in [0, 1]."""
    names = np.array(sorted({v for v in key.tolist() if v}), dtype=str)
    index = {name: i for i, name in enumerate(names.tolist())}
    rows = np.array([index.get(v, -1) for v in key.tolist()], dtype=np.int64)
    known = rows >= 0
    table = np.zeros((len(names), len(data.item_ids)))
    np.add.at(table, (rows[known], data.event_items[known]), data.event_weights[known])
    return names, (np.vstack([_unit(r) for r in table]) if len(names) else table).astype(np.float32)


class Popularity(Component):
    name: ClassVar[str] = "popularity"
    Params: ClassVar[type] = PopularityParams

    def __init__(self, arrays: Mapping[str, np.ndarray]) -> None:
        self._arrays = dict(arrays)
        self.overall = arrays["overall"]
        self.scene_names, self.per_scene = arrays["scene_names"], arrays["per_scene"]
        self.city_names, self.per_city = arrays["city_names"], arrays["per_city"]
        self._scene_index = {scene: s for s, scene in enumerate(self.scene_names.tolist())}
        self._city_index = {city: c for c, city in enumerate(self.city_names.tolist())}
        self._log_overall = np.log1p(RESOLUTION * self.overall).astype(np.float32)
        self._log_scene = np.log1p(RESOLUTION * self.per_scene).astype(np.float32)
        self._log_city = np.log1p(RESOLUTION * self.per_city).astype(np.float32)
        # Which items are among each scene's most popular, to say an item fits the scene.
        n_fit = max(1, math.ceil(SCENE_FIT_SHARE * self.overall.size))
        self._fits_scene = np.zeros(self.per_scene.shape, dtype=bool)
        for s, row in enumerate(self.per_scene):
            top = np.argsort(-row, kind="stable")[:n_fit]
            self._fits_scene[s, top[row[top] > 0]] = True

    @classmethod
    def fit(cls, data: TrainingData, params: Any, seed: int, progress: Progress = silent) -> Self:
        scenes, per_scene = _by(data, data.event_scenes.astype(str))
        cities, per_city = _by(data, data.event_cities.astype(str))
        _, overall = _by(data, np.full(len(data.event_items), "all"))
        return cls(
            {
                "overall": overall[0],
                "scene_names": scenes,
                "per_scene": per_scene,
                "city_names": cities,
                "per_city": per_city,
            }
        )

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], n_items: int, n_users: int) -> Self:
        n_scenes = len(arrays["scene_names"]) if "scene_names" in arrays else 0
        n_cities = len(arrays["city_names"]) if "city_names" in arrays else 0
        expect_shapes(
            arrays,
            {
                "overall": (n_items,),
                "scene_names": (n_scenes,),
                "per_scene": (n_scenes, n_items),
                "city_names": (n_cities,),
                "per_city": (n_cities, n_items),
            },
            cls.name,
        )
        return cls(arrays)

    def arrays(self) -> dict[str, np.ndarray]:
        return dict(self._arrays)

    def vocabulary(self) -> dict[str, set[str]]:
        return {"scene": set(self.scene_names.tolist()), "city": set(self.city_names.tolist())}

    def scene_of(self, ctx: QueryContext) -> int | None:
        return self._scene_index.get(ctx.scene)

    def city_of(self, ctx: QueryContext) -> int | None:
        return self._city_index.get(ctx.city) if ctx.city else None

    def score(self, ctx: QueryContext) -> np.ndarray:
        """In the scene (else overall), averaged with the city's when the city is known."""
        scene, city = self.scene_of(ctx), self.city_of(ctx)
        base = self._log_scene[scene] if scene is not None else self._log_overall
        if city is None:
            return base
        return (base + self._log_city[city]) * np.float32(0.5)

    @functools.cached_property
    def _rows(self) -> np.ndarray:
        return np.column_stack([self._log_overall, *self._log_scene, *self._log_city]).astype(np.float32)

    def item_rows(self) -> np.ndarray:
        """Columns: overall, then one per scene, then one per city (log-popularity)."""
        return self._rows

    def query(self, ctx: QueryContext) -> np.ndarray:
        """The mix of columns score() takes: the scene's (else overall), averaged with the city's."""
        scene, city = self.scene_of(ctx), self.city_of(ctx)
        weights = np.zeros(1 + len(self.scene_names) + len(self.city_names), dtype=np.float32)
        base = 0 if scene is None else 1 + scene
        weights[base] = 1.0 if city is None else 0.5
        if city is not None:
            weights[1 + len(self.scene_names) + city] = 0.5
        return weights

    def reason(self, ctx: QueryContext) -> Reason:
        scene, city = self.scene_of(ctx), self.city_of(ctx)
        if scene is not None:
            return Reason(ReasonCode.POPULAR_IN_SCENE, f"Popular in the scene: {_readable(ctx.scene)}")
        if city is not None:
            return Reason(ReasonCode.POPULAR_IN_CITY, f"Popular in {ctx.city.title()}")
        return Reason(ReasonCode.POPULAR, "Popular with customers")

    def extra_reason(self, item: int, ctx: QueryContext) -> Reason | None:
        scene = self.scene_of(ctx)
        if scene is None or not self._fits_scene[scene, item]:
            return None
        return Reason(ReasonCode.FITS_SCENE, f"Fits the scene: {_readable(ctx.scene)}")


def _readable(name: str) -> str:
    return name.replace("_", " ")
