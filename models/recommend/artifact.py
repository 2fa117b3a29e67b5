"""The recommender's arrays as training writes them and the service reads them (`.npz`, no pickle):
the catalog, the users and their histories, the blend, and each component's own arrays under
`NAME.ARRAY`."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from models.recommend.catalog import Catalog
from models.recommend.component import ArtifactError, Component, check_csr
from models.recommend.components import BY_NAME, FALLBACK

FORMAT = "shifu.recommender/5"
ARRAYS_FILE = "recommender.npz"
COMPONENT_NAMES = "component_names"
RETRIEVAL = "retrieval"  # key prefix of the retrieval indexes
_NESTED = ("components", RETRIEVAL)  # fields saved under their own keys, not as one array each

__all__ = ["ARRAYS_FILE", "FORMAT", "ArtifactError", "RecommenderArtifact"]


@dataclass(frozen=True)
class RecommenderArtifact:
    """Every model of one version. Items and users are indexed in the order of these arrays."""

    # Catalog.
    item_ids: np.ndarray  # str
    item_titles: np.ndarray  # str
    item_categories: np.ndarray  # str
    item_brands: np.ndarray  # str, "" when unknown
    item_tags: np.ndarray  # str, tags joined by models.recommend.content.TAG_SEPARATOR
    item_prices: np.ndarray  # float64, NaN when unknown
    item_in_stock: np.ndarray  # bool
    # Users the models were trained on, and their city ("" when unknown).
    user_ids: np.ndarray  # str
    user_cities: np.ndarray  # str
    # Each user's history (users × items CSR): summed event weights, and whether the item was ordered.
    history_indptr: np.ndarray  # int64
    history_indices: np.ndarray  # int32
    history_confidence: np.ndarray  # float32
    history_ordered: np.ndarray  # bool
    # The weight an item touched in the session counts with (a click).
    session_confidence: np.ndarray  # float, 0-d
    # How the components' standardised scores are weighted (one weight per component, in the order of
    # `components`), fitted on a validation split, and how much standardised log-popularity is
    # subtracted when the query has a personal signal: the long tail a personal answer can afford.
    blend_weights: np.ndarray  # float64
    blend_novelty: np.ndarray  # float, 0-d, >= 0
    blend_visitor_weights: np.ndarray  # float64: for visitors the model has not seen
    # The fitted components, by name, in the registry's order.
    components: dict[str, Component]
    # Per history entry, the Unix time of the user's latest event on the item (recency-aware scoring);
    # empty when unknown.
    history_last_seen: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.float64))
    # A large catalog's retrieval indexes, by component (models/recommend/retrieval.py); none when small.
    retrieval: dict[str, np.ndarray] = field(default_factory=dict)

    def save(self, directory: Path) -> Path:
        path = directory / ARRAYS_FILE
        arrays = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _NESTED}
        arrays[COMPONENT_NAMES] = np.array(list(self.components), dtype=str)
        arrays.update({f"{RETRIEVAL}.{name}": index for name, index in self.retrieval.items()})
        for name, component in self.components.items():
            arrays.update({f"{name}.{key}": value for key, value in component.arrays().items()})
        np.savez(path, **arrays)
        return path

    @classmethod
    def load(cls, directory: Path) -> RecommenderArtifact:
        path = directory / ARRAYS_FILE
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except (OSError, ValueError, EOFError) as error:
            raise ArtifactError(f"{path}: {error}") from error
        common = [f.name for f in fields(cls) if f.name not in _NESTED]
        missing = [name for name in [*common, COMPONENT_NAMES] if name not in arrays]
        if missing:
            raise ArtifactError(f"{path}: missing arrays {', '.join(missing)}")
        n_items, n_users = len(arrays["item_ids"]), len(arrays["user_ids"])
        components: dict[str, Component] = {}
        for name in arrays[COMPONENT_NAMES].tolist():
            if name not in BY_NAME:
                raise ArtifactError(f"{path}: unknown component {name!r}")
            own = {key.split(".", 1)[1]: value for key, value in arrays.items() if key.startswith(f"{name}.")}
            components[name] = BY_NAME[name].from_arrays(own, n_items, n_users)
        retrieval = {
            key.split(".", 1)[1]: value for key, value in arrays.items() if key.startswith(f"{RETRIEVAL}.")
        }
        artifact = cls(**{name: arrays[name] for name in common}, components=components, retrieval=retrieval)
        artifact.check()
        return artifact

    def check(self) -> None:
        n_items, n_users = len(self.item_ids), len(self.user_ids)
        expectations = {
            "item_titles": (n_items,),
            "item_categories": (n_items,),
            "item_brands": (n_items,),
            "item_tags": (n_items,),
            "item_prices": (n_items,),
            "item_in_stock": (n_items,),
            "user_cities": (n_users,),
            "history_indptr": (n_users + 1,),
            "history_confidence": self.history_indices.shape,
            "history_ordered": self.history_indices.shape,
            "blend_weights": (len(self.components),),
            "blend_visitor_weights": (len(self.components),),
        }
        for name, shape in expectations.items():
            if getattr(self, name).shape != shape:
                raise ArtifactError(f"{name} has shape {getattr(self, name).shape}, expected {shape}")
        if self.history_last_seen.shape not in ((0,), self.history_indices.shape):
            raise ArtifactError(
                f"history_last_seen has shape {self.history_last_seen.shape}, expected "
                f"{self.history_indices.shape}"
            )
        check_csr(self.history_indptr, self.history_indices, n_items, "history")
        if FALLBACK not in self.components:
            raise ArtifactError(f"the {FALLBACK} component, which every blend falls back on, is missing")
        for weights in (self.blend_weights, self.blend_visitor_weights):
            if not np.all(np.isfinite(weights)) or weights.sum() <= 0 or weights.min() < 0:
                raise ArtifactError("blend weights must be finite, non-negative, with a positive sum")
        if not (np.isfinite(self.blend_novelty) and self.blend_novelty >= 0):
            raise ArtifactError("blend novelty must be a finite number >= 0")

    def catalog(self) -> Catalog:
        """The items as this version was trained on them."""
        return Catalog(
            ids=self.item_ids,
            titles=self.item_titles,
            categories=self.item_categories,
            brands=self.item_brands,
            prices=self.item_prices,
            in_stock=self.item_in_stock,
            tags=self.item_tags,
            deleted=np.zeros(len(self.item_ids), dtype=bool),
            n_trained=len(self.item_ids),
        )

    def weights(self, visitor: bool = False) -> dict[str, float]:
        """The blend's weight per component name."""
        values = self.blend_visitor_weights if visitor else self.blend_weights
        return dict(zip(self.components, values.astype(float).tolist(), strict=True))
