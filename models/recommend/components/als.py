"""Implicit-feedback ALS (benfred/implicit): score = x_u · y_i, confidence = alpha × weight. A visitor's
or a session's vector is the exact least-squares solve against the fixed item factors, as implicit's
recalculate_user does; with a recency half-life, a known user's too, each history item's confidence
times its recency (QueryContext.recency), so the vector leans to what the user did last. The
validation split picks the half-life (0: the fitted user factors, recency off)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Self

import numpy as np
from threadpoolctl import threadpool_limits

from models.progress import Progress, silent
from models.recommend.component import (
    Component,
    QueryContext,
    TrainingData,
    expect_shapes,
    recency_half_life,
)


@dataclass(frozen=True)
class AlsParams:
    factors: int = 32
    iterations: int = 15
    regularization: float = 1.0
    alpha: float = 0.5
    threads: int = 2  # deterministic whatever the count
    # Shares of the user's history (0: recency off); the validation split picks one.
    recency_half_lives: tuple[float, ...] = (0.0, 0.2, 0.35, 0.5)

    def __post_init__(self) -> None:
        if not self.recency_half_lives or min(self.recency_half_lives) < 0:
            raise ValueError("ALS recency half-lives must be >= 0 (0: recency off)")
        if self.factors < 1 or self.iterations < 1 or self.threads < 0:
            raise ValueError("ALS factors and iterations must be at least 1, threads >= 0")
        if self.regularization < 0 or self.alpha <= 0:
            raise ValueError("ALS regularization must be >= 0 and alpha > 0")


class Als(Component):
    name: ClassVar[str] = "als"
    personal: ClassVar[bool] = True
    similarity_precedence: ClassVar[int] = 1
    Params: ClassVar[type] = AlsParams

    def __init__(
        self,
        user_factors: np.ndarray,
        item_factors: np.ndarray,
        regularization: float,
        alpha: float,
        half_life: float = 0.0,
    ):
        self.user_factors, self.item_factors = user_factors, item_factors
        self.regularization, self.alpha, self.half_life = regularization, alpha, half_life
        y = item_factors.astype(np.float64)
        self._gram = y.T @ y + regularization * np.eye(y.shape[1])
        norms = np.linalg.norm(y, axis=1, keepdims=True)
        self._unit = (y / np.where(norms > 0, norms, 1.0)).astype(np.float32)

    @classmethod
    def candidates(cls, params: Any) -> list[Any]:
        return [replace(params, recency_half_lives=(h,)) for h in params.recency_half_lives]

    @classmethod
    def fit_key(cls, params: Any) -> Any:
        return replace(params, recency_half_lives=(0.0,))  # the half-life changes the folding only

    def rescored(self, params: Any) -> Self:
        return type(self)(
            self.user_factors,
            self.item_factors,
            self.regularization,
            self.alpha,
            params.recency_half_lives[0],
        )

    @classmethod
    def fit(cls, data: TrainingData, params: Any, seed: int, progress: Progress = silent) -> Self:
        from implicit.cpu.als import AlternatingLeastSquares

        # One BLAS thread: implicit parallelises over users itself.
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=params.factors,
                regularization=params.regularization,
                alpha=params.alpha,
                iterations=params.iterations,
                random_state=seed,
                num_threads=params.threads,
            )
            model.fit(
                data.confidence,
                show_progress=False,
                callback=lambda iteration, *_: progress(iteration + 1, params.iterations),
            )
        return cls(
            np.asarray(model.user_factors, dtype=np.float32),
            np.asarray(model.item_factors, dtype=np.float32),
            params.regularization,
            params.alpha,
            params.recency_half_lives[0],
        )

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], n_items: int, n_users: int) -> Self:
        k = arrays["item_factors"].shape[1] if arrays.get("item_factors", np.empty(0)).ndim == 2 else 0
        expect_shapes(
            arrays,
            {
                "user_factors": (n_users, k),
                "item_factors": (n_items, k),
                "regularization": (),
                "alpha": (),
                "recency_half_life": (),
            },
            cls.name,
        )
        half_life = recency_half_life(arrays, cls.name)
        return cls(
            arrays["user_factors"],
            arrays["item_factors"],
            float(arrays["regularization"]),
            float(arrays["alpha"]),
            half_life,
        )

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "user_factors": self.user_factors,
            "item_factors": self.item_factors,
            "regularization": np.array(self.regularization),
            "alpha": np.array(self.alpha),
            "recency_half_life": np.array(self.half_life),
        }

    def score(self, ctx: QueryContext) -> np.ndarray | None:
        x = self.query(ctx)
        return None if x is None else self.item_factors @ x

    def item_rows(self) -> np.ndarray:
        return self.item_factors

    def query(self, ctx: QueryContext) -> np.ndarray | None:
        """The user's factors, or for a visitor, a session or with recency the exact ALS least-squares
        solve against the fixed item factors, as implicit's recalculate_user does:
        (YᵀY + λI + Yᵀ(C − I)Y) x = YᵀC p."""
        if ctx.user is not None and not ctx.session.size and self.half_life == 0:
            return self.user_factors[ctx.user]
        items, weights = ctx.interactions(self.half_life)
        if not items.size:
            return None
        y = self.item_factors[items].astype(np.float64)
        confidence = self.alpha * weights
        x = np.linalg.solve(self._gram + (y.T * (confidence - 1.0)) @ y, y.T @ confidence)
        return x.astype(np.float32)

    def closeness(self, anchors: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return self._unit[anchors] @ self._unit[targets].T

    def similar(self, anchor: int) -> np.ndarray:
        return self._unit @ self._unit[anchor]
