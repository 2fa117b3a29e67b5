"""Fitting each model on a Dataset, and putting them together into one artifact."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from models.recommend.artifact import COMPONENTS, RecommenderArtifact
from training.blend import Blend
from training.dataset import Dataset, event_confidence
from training.readers import DEFAULT_EVENT_WEIGHTS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelConfig:
    als_factors: int = 32
    als_iterations: int = 15
    als_regularization: float = 1.0
    als_alpha: float = 0.5
    ease_lambdas: tuple[float, ...] = (50.0, 100.0, 200.0, 400.0)  # the validation split picks one
    ease_max_items: int = 8000  # EASE keeps an items × items matrix; larger catalogs go without it
    lightfm_components: int = 48
    lightfm_epochs: int = 30
    lightfm_learning_rate: float = 0.05
    lightfm_alpha: float = 1e-6  # L2 penalty on both sides' feature embeddings
    seed: int = 42
    threads: int = 2  # ALS (deterministic whatever the count)
    lightfm_threads: int = 1  # LightFM's parallel SGD is not reproducible run to run with more than one

    event_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS))
    session_event: str = "click"
    half_life_days: float | None = None
    positive_event: str = "click"  # events this heavy and heavier count as positives (LightFM, holdout)

    def __post_init__(self) -> None:
        for name in (
            "als_factors",
            "als_iterations",
            "lightfm_components",
            "lightfm_epochs",
            "lightfm_threads",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', ' ')} must be at least 1, got {getattr(self, name)}")
        if self.threads < 0 or self.ease_max_items < 0:
            raise ValueError("threads and ease max items must be >= 0")
        if self.als_regularization < 0 or self.als_alpha <= 0 or self.lightfm_learning_rate <= 0:
            raise ValueError("ALS regularization must be >= 0, ALS alpha and the LightFM learning rate > 0")
        if self.half_life_days is not None and self.half_life_days <= 0:
            raise ValueError(f"half-life must be > 0 days, got {self.half_life_days}")
        negative = [name for name, weight in self.event_weights.items() if weight < 0]
        if negative:
            raise ValueError(f"event weights must be >= 0: {', '.join(negative)}")

    @property
    def positive_weight(self) -> float:
        return self.event_weights[self.positive_event]

    @property
    def ease_scale(self) -> float:
        """A confidence this large counts as a full interaction for EASE: one order."""
        return max(self.event_weights.values())


def _progress() -> bool:
    return sys.stderr.isatty()


def fit_als(data: Dataset, config: ModelConfig) -> tuple[np.ndarray, np.ndarray]:
    from implicit.cpu.als import AlternatingLeastSquares

    # One BLAS thread: implicit parallelises over users itself.
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=config.als_factors,
            regularization=config.als_regularization,
            alpha=config.als_alpha,
            iterations=config.als_iterations,
            random_state=config.seed,
            num_threads=config.threads,
        )
        model.fit(data.confidence, show_progress=_progress())
    return np.asarray(model.user_factors, dtype=np.float32), np.asarray(model.item_factors, dtype=np.float32)


def ease_gram(data: Dataset, config: ModelConfig) -> np.ndarray | None:
    """XᵀX of the scaled interactions, or None when the catalog is too large for EASE."""
    if len(data.item_ids) > config.ease_max_items:
        log.info("EASE skipped: %d items > %d", len(data.item_ids), config.ease_max_items)
        return None
    x = data.confidence.copy()
    x.data = np.minimum(x.data / config.ease_scale, 1.0)
    return (x.T @ x).toarray().astype(np.float64)


def fit_ease(gram: np.ndarray, lam: float) -> np.ndarray:
    """B = I − P / diag(P) with P = (XᵀX + λI)⁻¹, zero diagonal (Steck, 2019)."""
    precision = np.linalg.inv(gram + lam * np.eye(gram.shape[0]))
    weights = -precision / np.diag(precision)
    np.fill_diagonal(weights, 0.0)
    return weights.astype(np.float32)


@dataclass(frozen=True)
class LightFMParts:
    item_embeddings: np.ndarray
    item_bias: np.ndarray
    feature_embeddings: np.ndarray
    feature_bias: np.ndarray


def fit_lightfm(data: Dataset, config: ModelConfig) -> LightFMParts:
    from lightfm import LightFM

    model = LightFM(
        no_components=config.lightfm_components,
        loss="warp",
        learning_rate=config.lightfm_learning_rate,
        item_alpha=config.lightfm_alpha,
        user_alpha=config.lightfm_alpha,
        random_state=np.random.RandomState(config.seed),
    )
    model.fit(
        data.context_items,
        user_features=data.context_features,
        item_features=data.item_features,
        epochs=config.lightfm_epochs,
        num_threads=config.lightfm_threads,
        verbose=_progress(),
    )
    item_bias, item_embeddings = model.get_item_representations(data.item_features)
    return LightFMParts(
        item_embeddings=item_embeddings.astype(np.float32),
        item_bias=item_bias.astype(np.float32),
        feature_embeddings=model.user_embeddings.astype(np.float32),
        feature_bias=model.user_biases.astype(np.float32),
    )


def _unit(values: np.ndarray) -> np.ndarray:
    top = values.max() if values.size else 0.0
    return (values / top if top > 0 else values).astype(np.float32)


def popularity_by(events: pd.DataFrame, item_ids: np.ndarray, key: pd.Series, weights: np.ndarray) -> tuple:
    """Weighted event counts per item within each value of `key` (empty values left out), in [0, 1]."""
    names = np.array(sorted(v for v in key.unique() if v), dtype=str)
    table = np.zeros((len(names), len(item_ids)))
    rows = pd.Index(names).get_indexer(key)
    cols = pd.Index(item_ids).get_indexer(events["item_id"])
    known = rows >= 0
    np.add.at(table, (rows[known], cols[known]), weights[known])
    return names, np.vstack([_unit(r) for r in table]) if len(names) else table.astype(np.float32)


def popularity(events: pd.DataFrame, data: Dataset, config: ModelConfig) -> dict[str, np.ndarray]:
    weight = event_confidence(events, config.event_weights, config.half_life_days)
    _, overall = popularity_by(events, data.item_ids, pd.Series("all", index=events.index), weight)
    scenes, per_scene = popularity_by(events, data.item_ids, events["scene"], weight)
    city_of = dict(zip(data.user_ids, data.user_cities, strict=True))
    cities, per_city = popularity_by(events, data.item_ids, events["user_id"].map(city_of).fillna(""), weight)
    return {
        "popularity": overall[0],
        "scene_names": scenes,
        "scene_popularity": per_scene.astype(np.float32),
        "city_names": cities,
        "city_popularity": per_city.astype(np.float32),
    }


@dataclass(frozen=True)
class Fitted:
    """Every component fitted on one dataset, before blending."""

    data: Dataset
    als: tuple[np.ndarray, np.ndarray]
    ease_gram: np.ndarray | None
    lightfm: LightFMParts
    popularity: dict[str, np.ndarray]


def fit_all(events: pd.DataFrame, items: pd.DataFrame, data: Dataset, config: ModelConfig) -> Fitted:
    log.info(
        "fitting ALS on %d users × %d items, %d interactions", *data.confidence.shape, data.confidence.nnz
    )
    als = fit_als(data, config)
    gram = ease_gram(data, config)
    log.info("fitting LightFM on %d contexts × %d features", *data.context_features.shape)
    lightfm = fit_lightfm(data, config)
    return Fitted(data, als, gram, lightfm, popularity(events, data, config))


def _weight_array(weights: dict[str, float], has_ease: bool) -> np.ndarray:
    array = np.array([weights.get(name, 0.0) if name != "ease" or has_ease else 0.0 for name in COMPONENTS])
    return array if array.sum() > 0 else np.eye(len(COMPONENTS))[COMPONENTS.index("popularity")]


def artifact(
    fitted: Fitted, items: pd.DataFrame, config: ModelConfig, blend: Blend, ease_lambda: float
) -> RecommenderArtifact:
    data = fitted.data
    has_ease = fitted.ease_gram is not None
    ease = (
        fit_ease(fitted.ease_gram, ease_lambda)
        if fitted.ease_gram is not None
        else np.zeros((0, 0), np.float32)
    )
    user_features = data.user_features.tocsr()
    return RecommenderArtifact(
        item_ids=data.item_ids,
        item_titles=items["title"].to_numpy().astype(str),
        item_categories=items["category"].to_numpy().astype(str),
        item_prices=items["price"].to_numpy(dtype=np.float64),
        item_in_stock=items["in_stock"].to_numpy(dtype=bool),
        user_ids=data.user_ids,
        user_cities=data.user_cities,
        history_indptr=data.confidence.indptr.astype(np.int64),
        history_indices=data.confidence.indices.astype(np.int32),
        history_confidence=data.confidence.data.astype(np.float32),
        history_ordered=data.ordered.astype(bool),
        session_confidence=np.array(config.event_weights[config.session_event]),
        als_user_factors=fitted.als[0],
        als_item_factors=fitted.als[1],
        als_regularization=np.array(config.als_regularization),
        als_alpha=np.array(config.als_alpha),
        ease_weights=ease,
        ease_scale=np.array(config.ease_scale),
        lfm_item_embeddings=fitted.lightfm.item_embeddings,
        lfm_item_bias=fitted.lightfm.item_bias,
        lfm_feature_names=data.feature_names,
        lfm_feature_embeddings=fitted.lightfm.feature_embeddings,
        lfm_feature_bias=fitted.lightfm.feature_bias,
        user_feature_indptr=user_features.indptr.astype(np.int64),
        user_feature_indices=user_features.indices.astype(np.int32),
        blend_weights=_weight_array(blend.weights, has_ease),
        blend_novelty=np.array(blend.novelty),
        blend_visitor_weights=_weight_array(blend.visitor_weights, has_ease),
        **fitted.popularity,
    )
