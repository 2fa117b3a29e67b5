"""The recommender's arrays as training writes them and the service reads them (`.npz`, no pickle)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

FORMAT = "shifu.recommender/1"
ARRAYS_FILE = "recommender.npz"


class ArtifactError(Exception):
    """The arrays are missing, of the wrong shape, or inconsistent with each other."""


@dataclass(frozen=True)
class RecommenderArtifact:
    # Catalog, one entry per item, in item-index order.
    item_ids: np.ndarray  # str
    item_titles: np.ndarray  # str
    item_categories: np.ndarray  # str
    item_prices: np.ndarray  # float64, NaN when unknown
    item_in_stock: np.ndarray  # bool
    # Collaborative filtering (ALS): x_u . y_i scores user u for item i.
    user_ids: np.ndarray  # str
    user_factors: np.ndarray  # float32, users × factors
    item_factors: np.ndarray  # float32, items × factors
    regularization: np.ndarray  # float, 0-d
    # Each user's confidences c_ui (users × items CSR): the ALS input, kept to fold session items in
    # and to explain recommendations.
    history_indptr: np.ndarray  # int64
    history_indices: np.ndarray  # int32
    history_confidence: np.ndarray  # float32
    # Confidence one session item (a click) adds when folded into a user's vector.
    session_confidence: np.ndarray  # float, 0-d
    # Fallbacks for users the model has not seen: popularity overall and per scene, in [0, 1].
    popularity: np.ndarray  # float32, items
    scene_names: np.ndarray  # str
    scene_popularity: np.ndarray  # float32, scenes × items

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
        except (OSError, ValueError) as error:
            raise ArtifactError(f"{path}: {error}") from error
        artifact.check()
        return artifact

    def check(self) -> None:
        n_items, n_users = len(self.item_ids), len(self.user_ids)
        expectations = {
            "item_titles": (n_items,),
            "item_categories": (n_items,),
            "item_prices": (n_items,),
            "item_in_stock": (n_items,),
            "popularity": (n_items,),
            "history_indptr": (n_users + 1,),
            "scene_popularity": (len(self.scene_names), n_items),
        }
        for name, shape in expectations.items():
            if getattr(self, name).shape != shape:
                raise ArtifactError(f"{name} has shape {getattr(self, name).shape}, expected {shape}")
        if self.user_factors.shape[0] != n_users or self.item_factors.shape[0] != n_items:
            raise ArtifactError("factor matrices do not match the user and item counts")
        if self.user_factors.shape[1] != self.item_factors.shape[1]:
            raise ArtifactError("user and item factors differ in dimension")
        if self.history_indices.shape != self.history_confidence.shape:
            raise ArtifactError("history indices and confidences differ in length")
        if self.history_indices.size and (
            self.history_indices.max() >= n_items or self.history_indices.min() < 0
        ):
            raise ArtifactError("history refers to items outside the catalog")
        if self.history_indptr[-1] != self.history_indices.size:
            raise ArtifactError("history_indptr does not end at the number of history entries")
