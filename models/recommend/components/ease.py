"""EASE (Steck, 2019), a closed-form item-to-item model: B = I − P / diag(P), P = (XᵀX + λI)⁻¹, zero
diagonal; score = x_u B with x = min(weight / full weight, 1), each history item's x times its recency
(QueryContext.recency: halved every `recency_half_life` of the user's history touched since; 0: off), so
what a user did last weighs most in what comes next. The validation split picks λ and the half-life. It
keeps an items × items matrix, so a catalog above `max_items` goes without it."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Self

import numpy as np

from models.progress import Progress, silent
from models.recommend.component import (
    Component,
    QueryContext,
    TrainingData,
    expect_shapes,
    recency_half_life,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EaseParams:
    lambdas: tuple[float, ...] = (50.0, 100.0, 200.0, 400.0)  # the validation split picks one
    max_items: int = 8000
    # Shares of the user's history (0: every item counts alike); the validation split picks one.
    recency_half_lives: tuple[float, ...] = (0.0, 0.2, 0.35, 0.5)

    def __post_init__(self) -> None:
        if not self.lambdas or min(self.lambdas) <= 0 or self.max_items < 0:
            raise ValueError("EASE lambdas must be > 0 and max items >= 0")
        if not self.recency_half_lives or min(self.recency_half_lives) < 0:
            raise ValueError("EASE recency half-lives must be >= 0 (0: recency off)")


class Ease(Component):
    name: ClassVar[str] = "ease"
    personal: ClassVar[bool] = True
    similarity_precedence: ClassVar[int] = 0
    Params: ClassVar[type] = EaseParams

    def __init__(self, weights: np.ndarray, scale: float, lam: float, half_life: float = 0.0) -> None:
        self.weights, self.scale, self.lam, self.half_life = weights, scale, lam, half_life

    @classmethod
    def candidates(cls, params: Any) -> list[Any]:
        return [
            replace(params, lambdas=(lam,), recency_half_lives=(half_life,))
            for lam, half_life in itertools.product(params.lambdas, params.recency_half_lives)
        ]

    @classmethod
    def fit_key(cls, params: Any) -> Any:
        return replace(params, recency_half_lives=(0.0,))  # the half-life changes the scoring only

    def rescored(self, params: Any) -> Self:
        return type(self)(self.weights, self.scale, self.lam, params.recency_half_lives[0])

    @classmethod
    def fit(cls, data: TrainingData, params: Any, seed: int, progress: Progress = silent) -> Self | None:
        if len(data.item_ids) > params.max_items:
            log.info("EASE skipped: %d items > %d", len(data.item_ids), params.max_items)
            return None
        x = data.confidence.copy()
        x.data = np.minimum(x.data / data.full_weight, 1.0)
        gram = (x.T @ x).toarray().astype(np.float64)
        lam = params.lambdas[0]
        precision = np.linalg.inv(gram + lam * np.eye(gram.shape[0]))
        weights = -precision / np.diag(precision)
        np.fill_diagonal(weights, 0.0)
        return cls(weights.astype(np.float32), data.full_weight, lam, params.recency_half_lives[0])

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], n_items: int, n_users: int) -> Self:
        shapes = {"weights": (n_items, n_items), "scale": (), "lambda": (), "recency_half_life": ()}
        expect_shapes(arrays, shapes, cls.name)
        half_life = recency_half_life(arrays, cls.name)
        return cls(arrays["weights"], float(arrays["scale"]), float(arrays["lambda"]), half_life)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "weights": self.weights,
            "scale": np.array(self.scale),
            "lambda": np.array(self.lam),
            "recency_half_life": np.array(self.half_life),
        }

    def score(self, ctx: QueryContext) -> np.ndarray | None:
        items, weights = ctx.interactions(self.half_life)
        if not items.size:
            return None
        x = np.minimum(weights / self.scale, 1.0).astype(np.float32)
        return x @ self.weights[items]

    def closeness(self, anchors: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return self.weights[np.ix_(anchors, targets)]

    def similar(self, anchor: int) -> np.ndarray:
        return self.weights[anchor]
