"""EASE (Steck, 2019), a closed-form item-to-item model: B = I − P / diag(P), P = (XᵀX + λI)⁻¹, zero
diagonal; score = x_u B with x = min(weight / full weight, 1). It keeps an items × items matrix, so a
catalog above `max_items` goes without it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Self

import numpy as np

from models.progress import Progress, silent
from models.recommend.component import Component, QueryContext, TrainingData, expect_shapes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EaseParams:
    lambdas: tuple[float, ...] = (50.0, 100.0, 200.0, 400.0)  # the validation split picks one
    max_items: int = 8000

    def __post_init__(self) -> None:
        if not self.lambdas or min(self.lambdas) <= 0 or self.max_items < 0:
            raise ValueError("EASE lambdas must be > 0 and max items >= 0")


class Ease(Component):
    name: ClassVar[str] = "ease"
    personal: ClassVar[bool] = True
    similarity_precedence: ClassVar[int] = 0
    Params: ClassVar[type] = EaseParams

    def __init__(self, weights: np.ndarray, scale: float, lam: float) -> None:
        self.weights, self.scale, self.lam = weights, scale, lam

    @classmethod
    def candidates(cls, params: Any) -> list[Any]:
        return [replace(params, lambdas=(lam,)) for lam in params.lambdas]

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
        return cls(weights.astype(np.float32), data.full_weight, lam)

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], n_items: int, n_users: int) -> Self:
        expect_shapes(arrays, {"weights": (n_items, n_items), "scale": (), "lambda": ()}, cls.name)
        return cls(arrays["weights"], float(arrays["scale"]), float(arrays["lambda"]))

    def arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights, "scale": np.array(self.scale), "lambda": np.array(self.lam)}

    def score(self, ctx: QueryContext) -> np.ndarray | None:
        items, weights = ctx.interactions()
        if not items.size:
            return None
        x = np.minimum(weights / self.scale, 1.0).astype(np.float32)
        return x @ self.weights[items]

    def closeness(self, anchors: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return self.weights[np.ix_(anchors, targets)]

    def similar(self, anchor: int) -> np.ndarray:
        return self.weights[anchor]
