"""Scoring one query with every component of an artifact, and blending them. Training evaluates and fits
the blend with this same code, so what is measured offline is what the service answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from models.recommend.artifact import RecommenderArtifact
from models.recommend.component import QueryContext
from models.recommend.components import FALLBACK
from models.recommend.retrieval import Moments, Retrieval

NOVELTY = "novelty"  # the key of the long-tail term among a blend's contributions


@dataclass(frozen=True)
class Linear:
    """A linear component's scores, rows @ query, evaluated only where asked (large catalogs); their mean
    and deviation over the catalog come from the rows' moments."""

    rows: np.ndarray
    query: np.ndarray
    moments: Moments

    def at(self, items: np.ndarray) -> np.ndarray:
        return self.rows[items] @ self.query

    def full(self) -> np.ndarray:
        return self.rows @ self.query


@dataclass(frozen=True)
class Term:
    """scale × (raw − mean): one standardised, weighted component, evaluated only where needed."""

    raw: np.ndarray | Linear
    scale: float
    mean: float

    @classmethod
    def standardising(cls, raw: np.ndarray | Linear, weight: float) -> Term:
        """Zero mean, unit deviation over the catalog, times `weight`: components on different scales
        become comparable."""
        if isinstance(raw, Linear):
            mean, std = raw.moments.mean_std(raw.query)
        else:
            size = max(raw.size, 1)  # ndarray.mean's own arithmetic, without its Python wrapper
            mean = float(np.add.reduce(raw, dtype=np.float64)) / size
            std = float(np.sqrt(max(float(np.dot(raw, raw)) / size - mean * mean, 0.0)))
        return cls(raw, weight / std if std > 0 else 0.0, mean)

    def at(self, items: np.ndarray) -> np.ndarray:
        values = self.raw.at(items) if isinstance(self.raw, Linear) else self.raw[items]
        return self.scale * (values - self.mean)

    def full(self) -> np.ndarray:
        """The raw scores of the whole catalog."""
        return self.raw.full() if isinstance(self.raw, Linear) else self.raw

    def into(self, out: np.ndarray) -> np.ndarray:
        np.subtract(self.full(), self.mean, out=out, dtype=np.float32, casting="unsafe")
        out *= np.float32(self.scale)
        return out


def standardise(scores: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """`scale` × (scores − mean) / deviation over the catalog, as a new float32 array: the blend's
    terms in full, for fitting the blend offline with the very arithmetic the service uses."""
    return Term.standardising(scores, scale).into(np.empty(scores.shape, dtype=np.float32))


def blend_at(terms: Mapping[str, Term], items: np.ndarray) -> np.ndarray:
    """The blend's scores of some items: the sum of its terms there."""
    total = np.zeros(items.size, dtype=np.float32)
    for term in terms.values():
        total += term.at(items)
    return total


class Scorer:
    """Immutable; one instance serves concurrent queries."""

    def __init__(self, artifact: RecommenderArtifact) -> None:
        self.a = artifact
        self.weights = artifact.weights()
        self.visitor_weights = artifact.weights(visitor=True)
        self.novelty = float(artifact.blend_novelty)
        self.retrieval = Retrieval(artifact.components, artifact.retrieval) if artifact.retrieval else None

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
        components: Mapping[str, np.ndarray | Linear],
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

    def retrieve(self, ctx: QueryContext, n: int) -> tuple[np.ndarray, dict[str, Term]] | None:
        """For a large catalog: about `n` candidate items and the blend's terms, exactly as blend()
        would standardise them; None when the whole catalog is scored (a small catalog, or a component
        of the blend that cannot be retrieved)."""
        found = self.search_queries(ctx)
        if found is None:
            return None
        queries, terms = found
        assert self.retrieval is not None
        return self.retrieval.candidates(queries, n), terms

    def search_queries(self, ctx: QueryContext) -> tuple[dict[str, np.ndarray], dict[str, Term]] | None:
        """Per linear component of the blend, the query its terms add up to, and the terms."""
        weights = self.visitor_weights if ctx.user is None else self.weights
        needed = {name for name, w in weights.items() if w > 0} | {FALLBACK}
        if self.retrieval is None or not self.retrieval.covers(needed):
            return None
        linear: dict[str, Linear] = {}
        for name in needed:
            component = self.a.components[name]
            query, rows = component.query(ctx), component.item_rows()
            if query is not None and rows is not None:
                linear[name] = Linear(rows, query, self.retrieval.moments[name])
        terms = self.terms(linear, weights, novelty=0.0 if ctx.user is None else None)
        # Each component's part of the search: the query its terms add up to (novelty is popularity's).
        queries: dict[str, np.ndarray] = {}
        for name, term in terms.items():
            assert isinstance(term.raw, Linear)
            owner = FALLBACK if name == NOVELTY else name
            queries[owner] = queries.get(owner, 0.0) + np.float32(term.scale) * term.raw.query
        return queries, terms

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
