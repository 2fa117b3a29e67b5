"""Scoring one query with every model of an artifact, and blending them. Training evaluates and fits the
blend with this same code, so what is measured offline is what the service answers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.recommend.artifact import COMPONENTS, RecommenderArtifact

NOVELTY = "novelty"  # the key of the long-tail term among a blend's contributions
POPULARITY_RESOLUTION = 1000.0  # popularity in [0, 1] is scored as log(1 + 1000 p)


@dataclass(frozen=True)
class QueryContext:
    """What is known about the person and the situation, as indices into the artifact's arrays."""

    user: int | None
    history: np.ndarray  # item indices of the user's history
    history_weight: np.ndarray  # their summed event weights
    session: np.ndarray  # item indices touched in this session (not in the history)
    features: np.ndarray  # LightFM user-side feature indices (user id, attributes, scene, touchpoint)
    scene: int | None
    city: int | None


@dataclass(frozen=True)
class Term:
    """scale × (raw − mean): one standardised, weighted component, evaluated only where needed."""

    raw: np.ndarray
    scale: float
    mean: float

    @classmethod
    def standardising(cls, raw: np.ndarray, weight: float) -> Term:
        """Zero mean, unit deviation over the catalog, times `weight`: components on different scales
        become comparable."""

        mean = float(raw.mean(dtype=np.float64))
        std = float(np.sqrt(max(float(np.dot(raw, raw)) / max(raw.size, 1) - mean * mean, 0.0)))
        return cls(raw, weight / std if std > 0 else 0.0, mean)

    def at(self, items: np.ndarray) -> np.ndarray:
        return self.scale * (self.raw[items] - self.mean)

    def into(self, out: np.ndarray) -> np.ndarray:
        np.subtract(self.raw, self.mean, out=out, dtype=np.float32, casting="unsafe")
        out *= np.float32(self.scale)
        return out


def standardise(scores: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """`scale` × (scores − mean) / deviation over the catalog, as a new float32 array: the blend's
    terms in full, for fitting the blend offline with the very arithmetic the service uses."""
    return Term.standardising(scores, scale).into(np.empty(scores.shape, dtype=np.float32))


class Scorer:
    """Immutable; one instance serves concurrent queries."""

    def __init__(self, artifact: RecommenderArtifact) -> None:
        self.a = artifact
        y = artifact.als_item_factors.astype(np.float64)
        self._als_gram = y.T @ y + float(artifact.als_regularization) * np.eye(y.shape[1])
        self._alpha = float(artifact.als_alpha)
        self._session_weight = float(artifact.session_confidence)
        self._ease_scale = float(artifact.ease_scale)
        # Popularity is scored as log(1 + 1000 p), computed once here rather than per request.
        self._log_overall = np.log1p(POPULARITY_RESOLUTION * artifact.popularity).astype(np.float32)
        self._log_scene = np.log1p(POPULARITY_RESOLUTION * artifact.scene_popularity).astype(np.float32)
        self._log_city = np.log1p(POPULARITY_RESOLUTION * artifact.city_popularity).astype(np.float32)

        self.weights = dict(zip(COMPONENTS, artifact.blend_weights.astype(float).tolist(), strict=True))
        self.novelty = float(artifact.blend_novelty)
        self.visitor_weights = dict(
            zip(COMPONENTS, artifact.blend_visitor_weights.astype(float).tolist(), strict=True)
        )

    def user_features(self, user: int | None) -> np.ndarray:
        if user is None:
            return np.empty(0, dtype=np.int64)
        a = self.a
        return a.user_feature_indices[a.user_feature_indptr[user] : a.user_feature_indptr[user + 1]].astype(
            np.int64
        )

    def history(self, user: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(items, weights, ordered) of a known user; empty arrays otherwise."""
        if user is None:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32), np.empty(0, dtype=bool)
        a = self.a
        lo, hi = a.history_indptr[user], a.history_indptr[user + 1]
        return (
            a.history_indices[lo:hi].astype(np.int64),
            a.history_confidence[lo:hi],
            a.history_ordered[lo:hi],
        )

    def _interactions(self, ctx: QueryContext) -> tuple[np.ndarray, np.ndarray]:
        items = np.concatenate([ctx.history, ctx.session])
        weights = np.concatenate([ctx.history_weight, np.full(ctx.session.size, self._session_weight)])
        return items, weights.astype(np.float64)

    def als(self, ctx: QueryContext) -> np.ndarray | None:
        if ctx.user is not None and not ctx.session.size:
            return self.a.als_item_factors @ self.a.als_user_factors[ctx.user]
        items, weights = self._interactions(ctx)
        if not items.size:
            return None
        # The exact ALS least-squares solve for this user against fixed item factors, as implicit's
        # recalculate_user does: (YᵀY + λI + Yᵀ(C − I)Y) x = YᵀC p.
        y = self.a.als_item_factors[items].astype(np.float64)
        confidence = self._alpha * weights
        x = np.linalg.solve(self._als_gram + (y.T * (confidence - 1.0)) @ y, y.T @ confidence)
        return self.a.als_item_factors @ x.astype(np.float32)

    def ease(self, ctx: QueryContext) -> np.ndarray | None:
        items, weights = self._interactions(ctx)
        if not self.a.has_ease or not items.size:
            return None
        x = np.minimum(weights / self._ease_scale, 1.0).astype(np.float32)
        return x @ self.a.ease_weights[items]

    def lightfm(self, ctx: QueryContext) -> np.ndarray | None:
        if not self.a.has_lightfm or not ctx.features.size:
            return None
        query = self.a.lfm_feature_embeddings[ctx.features].mean(axis=0)
        return self.a.lfm_item_embeddings @ query + self.a.lfm_item_bias

    def popularity(self, ctx: QueryContext) -> np.ndarray:
        """Log-scaled, since popularity is heavy-tailed: in the scene (else overall), averaged with the
        city's when the city is known."""
        base = self._log_scene[ctx.scene] if ctx.scene is not None else self._log_overall
        if ctx.city is None:
            return base
        return (base + self._log_city[ctx.city]) * np.float32(0.5)

    def components(self, ctx: QueryContext, needed: set[str] | None = None) -> dict[str, np.ndarray]:
        """Each available component's raw scores over the catalog (only the `needed` ones, and
        popularity, which every blend may fall back on)."""
        scorers = {"als": self.als, "ease": self.ease, "lightfm": self.lightfm, "popularity": self.popularity}
        scores = {
            name: score(ctx)
            for name, score in scorers.items()
            if needed is None or name in needed or name == "popularity"
        }
        return {name: s for name, s in scores.items() if s is not None}

    def terms(
        self,
        components: dict[str, np.ndarray],
        weights: dict[str, float] | None = None,
        novelty: float | None = None,
    ) -> dict[str, Term]:
        """The blend's terms: each component weighted and standardised, and the novelty term; the blend
        is their sum. Weights are renormalised over the components this query has, popularity alone
        stands in when none of them has weight, and novelty applies only to queries with a personal
        signal."""
        weights = weights or self.weights
        novelty = self.novelty if novelty is None else novelty
        present = {name: weights[name] for name in components if weights[name] > 0}
        if not present:
            present = {"popularity": 1.0}
        total = sum(present.values())
        terms = {name: Term.standardising(components[name], w / total) for name, w in present.items()}
        if novelty > 0 and ("als" in components or "ease" in components):
            terms[NOVELTY] = Term.standardising(components["popularity"], -novelty)
        return terms

    def blend(self, ctx: QueryContext) -> tuple[np.ndarray, dict[str, Term]]:
        """The blended scores and their terms. Visitors get their own weights and no novelty."""
        weights = self.visitor_weights if ctx.user is None else self.weights
        components = self.components(ctx, {name for name, w in weights.items() if w > 0})
        terms = self.terms(components, weights, novelty=0.0 if ctx.user is None else None)
        total = np.zeros(len(self.a.item_ids), dtype=np.float32)
        buffer = np.empty_like(total)
        for term in terms.values():
            total += term.into(buffer)
        return total, terms
