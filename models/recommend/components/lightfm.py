"""The scene-aware LightFM hybrid: a query (a person in a scene at a touchpoint) is the mean of its
user-side feature embeddings (user id, user attributes, scene, touchpoint, request context), an item
the sum of its item-side features' (identity, category, brand, price band, tags); score = q · e_i + b_i.
An item added after training is the mean of its content features' embeddings: no refit needed."""

from __future__ import annotations

import functools
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
    check_csr,
    expect_shapes,
)


@dataclass(frozen=True)
class LightFMParams:
    components: int = 48
    epochs: int = 30
    learning_rate: float = 0.05
    alpha: float = 1e-6  # L2 penalty on both sides' feature embeddings
    threads: int = 1  # LightFM's parallel SGD is not reproducible run to run with more than one

    def __post_init__(self) -> None:
        if self.components < 1 or self.epochs < 1 or self.threads < 1:
            raise ValueError("LightFM components, epochs and threads must be at least 1")
        if self.learning_rate <= 0 or self.alpha < 0:
            raise ValueError("the LightFM learning rate must be > 0 and alpha >= 0")


class LightFM(Component):
    name: ClassVar[str] = "lightfm"
    Params: ClassVar[type] = LightFMParams

    def __init__(self, arrays: Mapping[str, np.ndarray]) -> None:
        self._arrays = dict(arrays)
        self.item_embeddings = arrays["item_embeddings"]
        self.item_bias = arrays["item_bias"]
        self.feature_names = arrays["feature_names"]
        self.feature_embeddings = arrays["feature_embeddings"]
        self.feature_bias = arrays["feature_bias"]
        self.user_feature_indptr = arrays["user_feature_indptr"]
        self.user_feature_indices = arrays["user_feature_indices"]
        self._feature_index = {name: f for f, name in enumerate(self.feature_names.tolist())}
        self.content_embeddings = arrays["content_embeddings"]
        self.content_bias = arrays["content_bias"]
        self._content_index = {name: f for f, name in enumerate(arrays["content_names"].tolist())}

    @classmethod
    def fit(cls, data: TrainingData, params: Any, seed: int, progress: Progress = silent) -> Self:
        from lightfm import LightFM as Model

        model = Model(
            no_components=params.components,
            loss="warp",
            learning_rate=params.learning_rate,
            item_alpha=params.alpha,
            user_alpha=params.alpha,
            random_state=np.random.RandomState(seed),
        )
        # Epoch by epoch, as fit() runs them, to report each.
        for epoch in range(params.epochs):
            model.fit_partial(
                data.context_items,
                user_features=data.context_features,
                item_features=data.item_features,
                epochs=1,
                num_threads=params.threads,
            )
            progress(epoch + 1, params.epochs)
        item_bias, item_embeddings = model.get_item_representations(data.item_features)
        user_features = data.user_features.tocsr()
        # The item-side features other than identity: what an item added later is made of.
        content = np.flatnonzero(~np.char.startswith(data.item_feature_names.astype(str), "item:"))
        return cls(
            {
                "item_embeddings": item_embeddings.astype(np.float32),
                "item_bias": item_bias.astype(np.float32),
                "feature_names": data.feature_names,
                "feature_embeddings": model.user_embeddings.astype(np.float32),
                "feature_bias": model.user_biases.astype(np.float32),
                "user_feature_indptr": user_features.indptr.astype(np.int64),
                "user_feature_indices": user_features.indices.astype(np.int32),
                "content_names": data.item_feature_names[content],
                "content_embeddings": model.item_embeddings[content].astype(np.float32),
                "content_bias": model.item_biases[content].astype(np.float32),
            }
        )

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], n_items: int, n_users: int) -> Self:
        n_features = len(arrays["feature_names"]) if "feature_names" in arrays else 0
        n_content = len(arrays["content_names"]) if "content_names" in arrays else 0
        embeddings = arrays.get("item_embeddings", np.empty((0, 0)))
        d = embeddings.shape[1] if embeddings.ndim == 2 else -1
        expect_shapes(
            arrays,
            {
                "item_embeddings": (n_items, d),
                "item_bias": (n_items,),
                "feature_names": (n_features,),
                "feature_embeddings": (n_features, d),
                "feature_bias": (n_features,),
                "user_feature_indptr": (n_users + 1,),
                "content_names": (n_content,),
                "content_embeddings": (n_content, d),
                "content_bias": (n_content,),
            },
            cls.name,
        )
        check_csr(
            arrays["user_feature_indptr"],
            arrays["user_feature_indices"],
            n_features,
            f"{cls.name} user features",
        )
        return cls(arrays)

    def arrays(self) -> dict[str, np.ndarray]:
        return dict(self._arrays)

    def vocabulary(self) -> dict[str, set[str]]:
        known: dict[str, set[str]] = {}
        for name in self._feature_index:
            kind, _, value = name.partition(":")
            if kind != "user" and value:
                known.setdefault(kind, set()).add(value)
        return known

    def features(self, ctx: QueryContext) -> np.ndarray:
        """The query's user-side feature indices: the known user's own, then the scene, the touchpoint and
        the request's context (which fills in attributes the user table did not have: a visitor's city)."""
        own = np.empty(0, dtype=np.int64)
        if ctx.user is not None:
            lo, hi = self.user_feature_indptr[ctx.user], self.user_feature_indptr[ctx.user + 1]
            own = self.user_feature_indices[lo:hi].astype(np.int64)
        names = [f"scene:{ctx.scene}", f"touchpoint:{ctx.touchpoint}"]
        names += [f"{key}:{value}" for key, value in ctx.attributes.items()]
        extra = [self._feature_index[n] for n in names if n in self._feature_index]
        if extra:
            own = np.unique(np.concatenate([own, np.array(extra, dtype=np.int64)]))
        return own

    def _query(self, ctx: QueryContext) -> np.ndarray | None:
        features = self.features(ctx)
        return self.feature_embeddings[features].mean(axis=0) if features.size else None

    def score(self, ctx: QueryContext) -> np.ndarray | None:
        query = self._query(ctx)
        return None if query is None else self.item_embeddings @ query + self.item_bias

    @functools.cached_property
    def _rows(self) -> np.ndarray:
        return np.hstack([self.item_embeddings, self.item_bias[:, None]]).astype(np.float32)

    def item_rows(self) -> np.ndarray:
        """Embeddings with the bias as one more column (the query's matching entry is 1)."""
        return self._rows

    def query(self, ctx: QueryContext) -> np.ndarray | None:
        query = self._query(ctx)
        return None if query is None else np.append(query, np.float32(1.0)).astype(np.float32)

    def score_new_items(self, ctx: QueryContext, features: list[list[str]]) -> np.ndarray | None:
        query = self._query(ctx)
        if query is None:
            return None
        embeddings = np.zeros((len(features), query.size), dtype=np.float32)
        bias = np.zeros(len(features), dtype=np.float32)
        for row, names in enumerate(features):
            known = [self._content_index[n] for n in names if n in self._content_index]
            if known:  # as in training, an item is the mean of its features (rows summing to 1)
                embeddings[row] = self.content_embeddings[known].mean(axis=0)
                bias[row] = self.content_bias[known].mean()
        return embeddings @ query + bias

    def reason(self, ctx: QueryContext) -> Reason:
        return Reason(ReasonCode.FITS_PROFILE, "Chosen by customers like you in this situation")
