"""The interface every recommendation model implements, what it is fitted on and what it is asked with.

A component is one model of the blend (ALS, EASE, LightFM, popularity, ...): it is fitted on
`TrainingData`, scores the whole catalog for a `QueryContext`, says why an item it led was chosen, and
saves itself as named arrays that load back without pickle. The artifact, the scorer, the blend fitting
and the explanations go over the registered components (models/recommend/components/) and never name
one; adding a model is one module plus its line in the registry.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from models.progress import Progress, silent


class ArtifactError(Exception):
    """The arrays are missing, of the wrong shape, or inconsistent with each other."""


class ReasonCode(enum.Enum):
    SIMILAR_TO_HISTORY = "similar_to_history"
    SIMILAR_TO_SESSION = "similar_to_session"
    SIMILAR_ITEM = "similar_item"
    POPULAR_IN_SCENE = "popular_in_scene"
    POPULAR = "popular"
    BOUGHT_TOGETHER = "bought_together"
    POPULAR_IN_CITY = "popular_in_city"
    FITS_SCENE = "fits_scene"
    FITS_PROFILE = "fits_profile"
    NEW_IN_CATEGORY = "new_in_category"
    GOES_WITH = "goes_with"


@dataclass(frozen=True)
class Reason:
    code: ReasonCode
    text: str
    related_item_id: str = ""


@dataclass(frozen=True)
class TrainingData:
    """What every component is fitted on, built from validated logs by training/dataset.py."""

    item_ids: np.ndarray  # str, catalog order
    user_ids: np.ndarray  # str, users with a weighted event
    confidence: sp.csr_matrix  # users × items, summed (decayed) event weights
    ordered: np.ndarray  # bool per entry of `confidence`: the user ordered the item
    last_seen: np.ndarray  # float64 per entry of `confidence`: Unix time of the pair's latest event
    user_cities: np.ndarray  # str, "" when unknown
    # LightFM-style contexts: one row per (user, scene, touchpoint) with positive events.
    context_user: np.ndarray  # user index per context row
    context_features: sp.csr_matrix  # contexts × features, rows summing to 1
    context_items: sp.coo_matrix  # contexts × items, 1 where positive
    feature_names: np.ndarray  # str, user-side features ("user:u1", "city:shanghai", "scene:repair", ...)
    user_features: sp.csr_matrix  # users × features: each known user's own features (id, attributes)
    item_features: sp.csr_matrix  # items × item-side features, rows summing to 1
    item_feature_names: np.ndarray  # str: "item:ID" (identity), then content (models/recommend/content.py)
    # Events grouped by item, scene and the user's city: summed (decayed) weights.
    event_items: np.ndarray  # int64
    event_weights: np.ndarray  # float64
    event_scenes: np.ndarray  # str
    event_cities: np.ndarray  # str
    full_weight: float  # the weight of one full interaction (an order): a confidence this large counts as 1


@dataclass(frozen=True)
class QueryContext:
    """What is known about the person and the situation: indices into the artifact's items and users,
    and the names each component maps to its own vocabulary."""

    user: int | None
    history: np.ndarray  # item indices of the user's history
    history_weight: np.ndarray  # their summed event weights
    session: np.ndarray  # item indices touched in this session (not in the history)
    session_weight: float  # the weight each session item counts with (a click)
    scene: str = ""
    touchpoint: str = ""
    city: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)  # the request's free context
    # Per item of the history, whether the user ordered it (an order explains as "bought together", and
    # what was ordered once and for all is not shown again).
    history_ordered: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))
    # Per item of the history, the Unix time of the user's latest event on it; empty when unknown (then
    # every item of the history counts as equally recent).
    history_last_seen: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.float64))

    def interactions(self, half_life: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """(items, weights) of the history and the session together; with a `half_life`, each history
        weight times its `recency`."""
        items = np.concatenate([self.history, self.session])
        history = self.history_weight * self.recency(half_life) if half_life > 0 else self.history_weight
        weights = np.concatenate([history, np.full(self.session.size, self.session_weight)])
        return items, weights.astype(np.float64)

    def recency(self, half_life: float) -> np.ndarray:
        """Per history item, 0.5 ** (age / half_life), where age is the share of the user's history
        touched after it (0 for the latest, the session being newer still). A share, not days: what a
        user does next follows their latest items whether they come daily or yearly, and the same
        half-life serves a user with 5 orders and one with 500 ratings."""
        n = self.history.size
        if half_life <= 0 or n == 0 or self.history_last_seen.size != n:
            return np.ones(n)
        latest_first = np.lexsort((-self.history, -self.history_last_seen))  # ties: later in the catalog
        age = np.empty(n)
        age[latest_first] = np.arange(n) / n
        return np.power(0.5, age / half_life)


class Component(ABC):
    """One model of the blend. Immutable once built: one instance serves concurrent queries."""

    name: ClassVar[str]
    # Scores from the user's own history or session: novelty applies to it, and an item it led is
    # explained by the history or session item closest to it (`closeness`).
    personal: ClassVar[bool] = False
    # Among the components offering item-to-item similarity (`similar`), a lower number decides first;
    # the next one only breaks its ties.
    similarity_precedence: ClassVar[int] = 0
    Params: ClassVar[type]  # a dataclass of the training parameters; its fields become --NAME-FIELD flags

    @classmethod
    @abstractmethod
    def fit(cls, data: TrainingData, params: Any, seed: int, progress: Progress = silent) -> Self | None:
        """The fitted component, or None when it cannot be fitted on this data (e.g. too large); an
        iterative fit reports its iterations to `progress`."""

    @classmethod
    def candidates(cls, params: Any) -> list[Any]:
        """Parameter settings to choose from on the validation split (one: nothing to choose)."""
        return [params]

    @classmethod
    def fit_key(cls, params: Any) -> Any:
        """What of `params` the fit depends on: candidates with equal keys share one fit, each scoring
        with its own parameters (`rescored`)."""
        return params

    def rescored(self, params: Any) -> Self:
        """This fitted model scoring with `params`, whose fit_key is that of the parameters it was
        fitted with."""
        return self

    @classmethod
    @abstractmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], n_items: int, n_users: int) -> Self:
        """The component from the arrays `arrays()` gave; ArtifactError when they are inconsistent."""

    @abstractmethod
    def arrays(self) -> dict[str, np.ndarray]:
        """Everything needed to serve, as named numpy arrays (no objects, no pickle)."""

    @abstractmethod
    def score(self, ctx: QueryContext) -> np.ndarray | None:
        """A score per catalog item, or None when this component has nothing to say about the query."""

    def item_rows(self) -> np.ndarray | None:
        """For a linear component, the fixed item matrix its scores are rows @ query(ctx) of (large
        catalogs retrieve candidates with it: models/recommend/retrieval.py); None otherwise."""
        return None

    def query(self, ctx: QueryContext) -> np.ndarray | None:
        """A linear component's query vector (score = item_rows() @ query), None when it has nothing to
        say about the query."""
        return None

    def closeness(self, anchors: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Personal components: how close each anchor item (rows) is to each target item (columns)."""
        raise NotImplementedError(f"{self.name} is not personal")

    def reason(self, ctx: QueryContext) -> Reason | None:
        """Why an item this component led was chosen, for components that are not personal."""
        return None

    def extra_reason(self, item: int, ctx: QueryContext) -> Reason | None:
        """A second reason this component adds to any item it did not lead itself (e.g. fits the scene)."""
        return None

    def similar(self, anchor: int) -> np.ndarray | None:
        """How similar every item is to `anchor`, for components that model items against items."""
        return None

    def score_new_items(self, ctx: QueryContext, features: list[list[str]]) -> np.ndarray | None:
        """Scores of items added after training, from their content features (one list per item), for
        components that represent items by their content; None: the serving code places them by their
        category (the mean score of the category's items)."""
        return None

    def vocabulary(self) -> dict[str, set[str]]:
        """The context values this component knows, by kind ("scene", "touchpoint", "city", ...)."""
        return {}


def check_csr(indptr: np.ndarray, indices: np.ndarray, bound: int, what: str) -> None:
    """ArtifactError unless indptr/indices form a CSR index whose entries are all below `bound`."""
    if indptr[-1] != indices.size or (indices.size and (indices.min() < 0 or indices.max() >= bound)):
        raise ArtifactError(f"{what}: index arrays are inconsistent")


def expect_shapes(
    arrays: Mapping[str, np.ndarray], shapes: Mapping[str, tuple[int, ...]], where: str
) -> None:
    """ArtifactError naming the first array that is missing or of another shape."""
    for name, shape in shapes.items():
        if name not in arrays:
            raise ArtifactError(f"{where}: missing array {name}")
        if arrays[name].shape != shape:
            raise ArtifactError(f"{where}.{name} has shape {arrays[name].shape}, expected {shape}")


def recency_half_life(arrays: Mapping[str, np.ndarray], where: str) -> float:
    """The stored recency half-life (QueryContext.recency); ArtifactError unless it is >= 0."""
    half_life = float(arrays["recency_half_life"])
    if not half_life >= 0:
        raise ArtifactError(f"{where}.recency_half_life must be >= 0, got {half_life}")
    return half_life
