"""The recommender's arrays as training writes them and the service reads them (`.npz`, no pickle)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

FORMAT = "shifu.recommender/2"
ARRAYS_FILE = "recommender.npz"
COMPONENTS = ("als", "ease", "lightfm", "popularity")


class ArtifactError(Exception):
    """The arrays are missing, of the wrong shape, or inconsistent with each other."""


@dataclass(frozen=True)
class RecommenderArtifact:
    """Every model of one version. Items and users are indexed in the order of these arrays."""

    # Catalog.
    item_ids: np.ndarray  # str
    item_titles: np.ndarray  # str
    item_categories: np.ndarray  # str
    item_prices: np.ndarray  # float64, NaN when unknown
    item_in_stock: np.ndarray  # bool
    # Users the models were trained on, and their city ("" when unknown) for city popularity.
    user_ids: np.ndarray  # str
    user_cities: np.ndarray  # str
    # Each user's history (users × items CSR): summed event weights, and whether the item was ordered.
    history_indptr: np.ndarray  # int64
    history_indices: np.ndarray  # int32
    history_confidence: np.ndarray  # float32
    history_ordered: np.ndarray  # bool
    # The weight an item touched in the session counts with (a click).
    session_confidence: np.ndarray  # float, 0-d
    # ALS (implicit): score = x_u . y_i; confidence = alpha × weight.
    als_user_factors: np.ndarray  # float32, users × k
    als_item_factors: np.ndarray  # float32, items × k
    als_regularization: np.ndarray  # float, 0-d
    als_alpha: np.ndarray  # float, 0-d
    # EASE, a closed-form item-to-item model: score = x_u B with x = min(weight / ease_scale, 1);
    # 0 × 0 when the catalog was too large to train it.
    ease_weights: np.ndarray  # float32, items × items
    ease_scale: np.ndarray  # float, 0-d
    # LightFM hybrid: a query's representation is the mean of its user-side feature embeddings
    # (user id, user attributes, scene, touchpoint); score = q . e_i + b_i.
    lfm_item_embeddings: np.ndarray  # float32, items × d (d = 0 when not trained)
    lfm_item_bias: np.ndarray  # float32, items
    lfm_feature_names: np.ndarray  # str, "user:u1", "city:shanghai", "scene:new_home", ...
    lfm_feature_embeddings: np.ndarray  # float32, features × d
    lfm_feature_bias: np.ndarray  # float32, features
    user_feature_indptr: np.ndarray  # int64, users + 1: each known user's own features (id, attributes)
    user_feature_indices: np.ndarray  # int32
    # Popularity in [0, 1]: overall, per scene, per city.
    popularity: np.ndarray  # float32, items
    scene_names: np.ndarray  # str
    scene_popularity: np.ndarray  # float32, scenes × items
    city_names: np.ndarray  # str
    city_popularity: np.ndarray  # float32, cities × items
    # How the components' standardised scores are weighted, fitted on a validation split, and how much
    # standardised log-popularity is subtracted when the query has a personal signal (history or session):
    # the long tail a personal answer can afford.
    blend_weights: np.ndarray  # float64, one per COMPONENTS entry
    blend_novelty: np.ndarray  # float, 0-d, >= 0
    # The weights for visitors the model has not seen (session items, scene and context only).
    blend_visitor_weights: np.ndarray  # float64, one per COMPONENTS entry

    def save(self, directory: Path) -> Path:
        path = directory / ARRAYS_FILE
        np.savez(path, **{f.name: getattr(self, f.name) for f in fields(self)})
        return path

    @classmethod
    def load(cls, directory: Path) -> RecommenderArtifact:
        path = directory / ARRAYS_FILE
        try:
            with np.load(path, allow_pickle=False) as arrays:
                missing = [f.name for f in fields(cls) if f.name not in arrays]
                if missing:
                    raise ArtifactError(f"{path}: missing arrays {', '.join(missing)}")
                artifact = cls(**{f.name: arrays[f.name] for f in fields(cls)})
        except (OSError, ValueError, EOFError) as error:
            raise ArtifactError(f"{path}: {error}") from error
        artifact.check()
        return artifact

    @property
    def has_ease(self) -> bool:
        return self.ease_weights.size > 0

    @property
    def has_lightfm(self) -> bool:
        return self.lfm_item_embeddings.shape[1] > 0

    def check(self) -> None:
        n_items, n_users = len(self.item_ids), len(self.user_ids)
        n_features, d = len(self.lfm_feature_names), self.lfm_item_embeddings.shape[1]
        expectations = {
            "item_titles": (n_items,),
            "item_categories": (n_items,),
            "item_prices": (n_items,),
            "item_in_stock": (n_items,),
            "user_cities": (n_users,),
            "history_indptr": (n_users + 1,),
            "history_confidence": self.history_indices.shape,
            "history_ordered": self.history_indices.shape,
            "als_user_factors": (n_users, self.als_item_factors.shape[1]),
            "als_item_factors": (n_items, self.als_user_factors.shape[1]),
            "ease_weights": (n_items, n_items) if self.has_ease else (0, 0),
            "lfm_item_embeddings": (n_items, d),
            "lfm_item_bias": (n_items,),
            "lfm_feature_embeddings": (n_features, d),
            "lfm_feature_bias": (n_features,),
            "user_feature_indptr": (n_users + 1,),
            "popularity": (n_items,),
            "scene_popularity": (len(self.scene_names), n_items),
            "city_popularity": (len(self.city_names), n_items),
            "blend_weights": (len(COMPONENTS),),
            "blend_visitor_weights": (len(COMPONENTS),),
        }
        for name, shape in expectations.items():
            if getattr(self, name).shape != shape:
                raise ArtifactError(f"{name} has shape {getattr(self, name).shape}, expected {shape}")
        for indptr, indices, bound, name in (
            (self.history_indptr, self.history_indices, n_items, "history"),
            (self.user_feature_indptr, self.user_feature_indices, n_features, "user features"),
        ):
            if indptr[-1] != indices.size or (indices.size and (indices.min() < 0 or indices.max() >= bound)):
                raise ArtifactError(f"{name} index arrays are inconsistent")
        for weights in (self.blend_weights, self.blend_visitor_weights):
            if not np.all(np.isfinite(weights)) or weights.sum() <= 0 or weights.min() < 0:
                raise ArtifactError("blend weights must be finite, non-negative, with a positive sum")

        if not (np.isfinite(self.blend_novelty) and self.blend_novelty >= 0):
            raise ArtifactError("blend novelty must be a finite number >= 0")
