"""Fitting the blend on a validation split, through the same standardise-and-weight rule the service uses.

1. The component weights: the point of a simplex grid with the best NDCG@k.
2. The novelty (how much standardised log-popularity personal answers subtract): the value on a grid
   that covers the most of the catalog while keeping NDCG@k within `tradeoff` of the best, there and
   one step further. A storefront that shows the same hundred items to everybody wastes its catalog;
   this buys reach at a bounded price. NDCG@k holds flat as novelty grows, then falls off a cliff; the
   model served, fitted on more data, meets its cliff a little earlier than the validation model (on
   MovieLens one step: a value at the edge lost 2% on validation and 8% on the test set), so the value
   chosen keeps a step of margin.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

import numpy as np

from models import progress
from models.recommend.components import FALLBACK
from models.recommend.recommender import Recommender
from models.recommend.scoring import standardise
from training.evaluate import EvalQuery, query_context, sample, seen

log = logging.getLogger(__name__)
GRID_STEP = 0.1
NOVELTY_GRID = tuple(round(0.1 * n, 1) for n in range(11))
# Validation queries scored at most: the standardised scores of all components are held in memory.
MAX_CELLS = 24_000_000


@dataclass(frozen=True)
class Blend:
    weights: dict[str, float]  # for users the model knows
    novelty: float
    visitor_weights: dict[str, float]  # for visitors it does not know
    ndcg: float = float("nan")  # validation NDCG@k and coverage of the known users' blend
    coverage: float = float("nan")
    visitor_ndcg: float = float("nan")

    @classmethod
    def only(cls, component: str) -> Blend:
        """One component alone, for measuring it."""
        return cls({component: 1.0}, 0.0, {component: 1.0})


def simplex_grid(n: int, step: float) -> np.ndarray:
    units = round(1 / step)
    points = [p for p in itertools.product(range(units + 1), repeat=n) if sum(p) == units]
    return np.array(points, dtype=np.float64) / units


class _Validation:
    """Standardised component scores of every validation query, held once and blended many times."""

    def __init__(self, recommender: Recommender, queries: list[EvalQuery], k: int) -> None:
        n, n_items = len(queries), recommender.n_items
        self.k, self.n_items = k, n_items
        components = recommender.scorer.a.components
        self.names = list(components)
        self.fallback = self.names.index(FALLBACK)
        c = len(self.names)
        self.z = np.zeros((n, c, n_items), dtype=np.float32)
        self.present = np.zeros((n, c), dtype=bool)
        self.excluded = np.zeros((n, n_items), dtype=bool)
        self.relevant = np.zeros((n, n_items), dtype=bool)
        self.known = np.zeros(n, dtype=bool)
        with progress.track("blend: scoring validation queries") as advance:
            for q, query in enumerate(queries):
                advance(q, n)
                ctx = query_context(recommender, query)
                for name, scores in recommender.scorer.components(ctx).items():
                    i = self.names.index(name)
                    self.z[q, i], self.present[q, i] = standardise(scores), True
                self.excluded[q, seen(ctx)] = True
                self.known[q] = ctx.user is not None
                self.relevant[q, list(query.relevant)] = True
        discounts = 1.0 / np.log2(np.arange(2, k + 2))
        self.discounts = discounts
        self.ideal = np.array([discounts[: min(len(q.relevant), k)].sum() for q in queries])
        # As in serving, novelty applies to known users with a personal signal only.
        personal = [i for i, name in enumerate(self.names) if components[name].personal]
        self.personal = self.present[:, personal].any(axis=1) & self.known

    def score(self, weights: np.ndarray, novelty: float) -> tuple[float, float]:
        """(NDCG@k, catalog coverage) of the blend with these weights."""
        # As in serving: weights renormalised over the components a query has; popularity when none.
        per_query = np.where(self.present, weights, 0.0)
        totals = per_query.sum(axis=1, keepdims=True)
        fallback = np.eye(len(self.names))[self.fallback]
        per_query = np.where(totals > 0, per_query / np.where(totals > 0, totals, 1.0), fallback)
        blended = np.einsum("qc,qci->qi", per_query.astype(np.float32), self.z)
        if novelty > 0:
            blended -= np.float32(novelty) * self.z[:, self.fallback] * self.personal[:, None]
        blended[self.excluded] = -np.inf
        top = np.argpartition(-blended, self.k - 1, axis=1)[:, : self.k]
        order = np.argsort(-np.take_along_axis(blended, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        hits = np.take_along_axis(self.relevant, top, axis=1)
        ndcg = float(np.mean((hits * self.discounts).sum(axis=1) / self.ideal))
        return ndcg, np.unique(top).size / self.n_items


def _sample(queries: list[EvalQuery], n_components: int, n_items: int, seed: int) -> list[EvalQuery]:
    return sample(queries, MAX_CELLS // (n_components * max(n_items, 1)), seed)


def _best_weights(
    validation: _Validation, usable: np.ndarray, what: str
) -> tuple[np.ndarray, tuple[float, float]]:
    best_weights, best = np.eye(len(validation.names))[validation.fallback], (-1.0, 0.0)
    grid = simplex_grid(int(usable.sum()), GRID_STEP)
    with progress.track(f"blend grid, {what}") as advance:
        for n, point in enumerate(grid):
            advance(n, len(grid))
            weights = np.zeros(len(validation.names))
            weights[usable] = point
            result = validation.score(weights, 0.0)
            if result[0] > best[0] + 1e-12:
                best_weights, best = weights, result
    return best_weights, best


def _novelty(
    validation: _Validation, weights: np.ndarray, best: tuple[float, float], tradeoff: float
) -> tuple[float, tuple[float, float]]:
    """The novelty of the grid with the most coverage whose NDCG@k, and the next value's, are within
    `tradeoff` of the best (module docstring); (novelty, (NDCG@k, coverage))."""
    results = [best] + [validation.score(weights, novelty) for novelty in NOVELTY_GRID[1:]]
    for novelty, (ndcg, coverage) in zip(NOVELTY_GRID, results, strict=True):
        log.info("novelty %.1f: validation NDCG %.4f, coverage %.3f", novelty, ndcg, coverage)
    within = [ndcg >= (1 - tradeoff) * best[0] for ndcg, _ in results]
    chosen = 0
    for n in range(1, len(results) - 1):
        if within[n] and within[n + 1] and results[n][1] > results[chosen][1]:
            chosen = n
    return NOVELTY_GRID[chosen], results[chosen]


def fit(
    recommender: Recommender,
    queries: list[EvalQuery],
    visitors: list[EvalQuery],
    k: int,
    available: set[str],
    seed: int,
    tradeoff: float,
) -> Blend:
    """Known users' weights and novelty on `queries`; visitors' weights on `visitors`."""
    names = list(recommender.scorer.a.components)
    usable = np.array([name in available for name in names])
    queries = _sample(queries, len(names), recommender.n_items, seed)
    visitors = _sample(visitors, len(names), recommender.n_items, seed)
    validation = _Validation(recommender, queries, k)
    best_weights, best = _best_weights(validation, usable, "known users")
    chosen_novelty, chosen = _novelty(validation, best_weights, best, tradeoff)
    visitor_weights, visitor = best_weights, (float("nan"), float("nan"))
    if visitors:
        visitor_weights, visitor = _best_weights(_Validation(recommender, visitors, k), usable, "visitors")
    blend = Blend(
        weights=dict(zip(names, best_weights.tolist(), strict=True)),
        novelty=chosen_novelty,
        visitor_weights=dict(zip(names, visitor_weights.tolist(), strict=True)),
        ndcg=chosen[0],
        coverage=chosen[1],
        visitor_ndcg=visitor[0],
    )
    log.info(
        "blend %s, novelty %.1f: validation NDCG@%d %.4f (best %.4f), coverage %.3f (%d queries); "
        "visitors %s: NDCG@%d %.4f (%d queries)",
        blend.weights, blend.novelty, k, chosen[0], best[0], chosen[1], len(queries),
        blend.visitor_weights, k, visitor[0], len(visitors),
    )  # fmt: skip
    return blend
