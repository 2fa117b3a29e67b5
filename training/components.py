"""The models' training settings, fitting every registered component on one dataset, and putting them
together into one artifact. Nothing here names a component: the registry
(models/recommend/components/) is the list."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from models import progress
from models.recommend import content
from models.recommend.artifact import RecommenderArtifact
from models.recommend.component import Component, TrainingData
from models.recommend.components import BY_NAME, COMPONENTS, FALLBACK
from training.readers import DEFAULT_EVENT_WEIGHTS

log = logging.getLogger(__name__)


def _default_params() -> dict[str, Any]:
    return {component.name: component.Params() for component in COMPONENTS}


@dataclass(frozen=True)
class ModelConfig:
    # Each component's own parameters, by name (flags --NAME-FIELD).
    params: dict[str, Any] = field(default_factory=_default_params)
    seed: int = 42
    event_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS))
    session_event: str = "click"
    half_life_days: float | None = None
    positive_event: str = "click"  # events this heavy and heavier count as positives (LightFM, holdout)

    def __post_init__(self) -> None:
        unknown = set(self.params) - set(BY_NAME)
        if unknown:
            raise ValueError(f"no component named {', '.join(sorted(unknown))}")
        if self.half_life_days is not None and self.half_life_days <= 0:
            raise ValueError(f"half-life must be > 0 days, got {self.half_life_days}")
        negative = [name for name, weight in self.event_weights.items() if weight < 0]
        if negative:
            raise ValueError(f"event weights must be >= 0: {', '.join(negative)}")

    @classmethod
    def with_params(cls, **changes: dict[str, Any]) -> ModelConfig:
        """Defaults, with some parameters of some components changed: with_params(als={"factors": 8})."""
        params = _default_params()
        for name, values in changes.items():
            params[name] = replace(params[name], **values)
        return cls(params=params)

    def params_of(self, name: str) -> Any:
        return self.params.get(name, BY_NAME[name].Params())

    @property
    def positive_weight(self) -> float:
        return self.event_weights[self.positive_event]


def fit_one(component: type[Component], data: TrainingData, params: Any, seed: int) -> Component | None:
    """One component fitted, its iterations shown as they go, and a log line when it is done."""
    started = time.perf_counter()
    with progress.track(f"fitting {component.name}") as advance:
        fitted = component.fit(data, params, seed, advance)
    log.info(
        "%s %s on %d users × %d items in %.1f s",
        "fitted" if fitted is not None else "skipped", component.name, *data.confidence.shape,
        time.perf_counter() - started,
    )  # fmt: skip
    return fitted


def fit_all(
    data: TrainingData, config: ModelConfig, chosen: dict[str, Any] | None = None, skip: Collection[str] = ()
) -> dict[str, Component]:
    """Every registered component that can be fitted on `data` (but those in `skip`, fitted elsewhere),
    with its `chosen` parameters (else its first candidate)."""
    fitted = {}
    for component in COMPONENTS:
        if component.name in skip:
            continue
        params = (chosen or {}).get(component.name) or component.candidates(config.params_of(component.name))[
            0
        ]
        model = fit_one(component, data, params, config.seed)
        if model is not None:
            fitted[component.name] = model
    return fitted


def weights_array(weights: dict[str, float], names: list[str]) -> np.ndarray:
    """One weight per component present; the fallback alone when none has weight."""
    array = np.array([weights.get(name, 0.0) for name in names])
    return array if array.sum() > 0 else np.array([float(name == FALLBACK) for name in names])


def artifact(
    data: TrainingData,
    items: pd.DataFrame,
    config: ModelConfig,
    fitted: dict[str, Component],
    weights: dict[str, float],
    novelty: float,
    visitor_weights: dict[str, float],
) -> RecommenderArtifact:
    names = list(fitted)
    return RecommenderArtifact(
        item_ids=data.item_ids,
        item_titles=items["title"].to_numpy().astype(str),
        item_categories=items["category"].to_numpy().astype(str),
        item_brands=items["brand"].to_numpy().astype(str),
        item_tags=items["tags"].map(content.TAG_SEPARATOR.join).to_numpy().astype(str),
        item_prices=items["price"].to_numpy(dtype=np.float64),
        item_in_stock=items["in_stock"].to_numpy(dtype=bool),
        user_ids=data.user_ids,
        user_cities=data.user_cities,
        history_indptr=data.confidence.indptr.astype(np.int64),
        history_indices=data.confidence.indices.astype(np.int32),
        history_confidence=data.confidence.data.astype(np.float32),
        history_ordered=data.ordered.astype(bool),
        session_confidence=np.array(config.event_weights[config.session_event]),
        blend_weights=weights_array(weights, names),
        blend_novelty=np.array(novelty),
        blend_visitor_weights=weights_array(visitor_weights, names),
        components=fitted,
        history_last_seen=data.last_seen.astype(np.float64),
    )
