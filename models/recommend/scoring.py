"""Scoring one query with every component of an artifact, and blending them. Training evaluates and fits
the blend with this same code, so what is measured offline is what the service answers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.recommend.artifact import RecommenderArtifact
from models.recommend.component import QueryContext
from models.recommend.components import FALLBACK

NOVELTY = "novelty"  # the key of the long-tail term among a blend's contributions


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
        self.weights = artifact.weights()
        self.visitor_weights = artifact.weights(visitor=True)
        self.novelty = float(artifact.blend_novelty)

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

    def components(self, ctx: QueryContext, needed: set[str] | None = None) -> dict[str, np.ndarray]:
        """Each component's raw scores over the catalog (only the `needed` ones, and the fallback, which
        every blend may stand on); a component with nothing to say about the query is left out."""
        scores = {
            name: component.score(ctx)
            for name, component in self.a.components.items()
            if needed is None or name in needed or name == FALLBACK
        }
        return {name: s for name, s in scores.items() if s is not None}

    def terms(
        self,
        components: dict[str, np.ndarray],
        weights: dict[str, float] | None = None,
        novelty: float | None = None,
    ) -> dict[str, Term]:
        """The blend's terms: each component weighted and standardised, and the novelty term; the blend
        is their sum. Weights are renormalised over the components this query has, the fallback alone
        stands in when none of them has weight, and novelty applies only to queries with a personal
        signal."""
        weights = weights or self.weights
        novelty = self.novelty if novelty is None else novelty
        present = {name: weights[name] for name in components if weights.get(name, 0.0) > 0}
        if not present:
            present = {FALLBACK: 1.0}
        total = sum(present.values())
        terms = {name: Term.standardising(components[name], w / total) for name, w in present.items()}
        personal = any(self.a.components[name].personal for name in components)
        if novelty > 0 and personal:
            terms[NOVELTY] = Term.standardising(components[FALLBACK], -novelty)
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
