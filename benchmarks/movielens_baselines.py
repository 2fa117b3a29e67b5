"""The tuned simple models MovieLens is measured against (benchmarks/movielens.py): EASE and RP3beta on
the training positives, tuned on a validation split of the training data (the same holdout again), and
EASE tuned on the test set itself, the upper reference no honest tuning can reach.

EASE: Steck 2019, B = I − P / diag(P), P = (XᵀX + λI)⁻¹. RP3beta: Paudel et al. 2017, as Dacrema et al.
2019 run it: W = (P_iu^α P_ui^α) with column j divided by popularity_j^β, P the row-normalised
user–item transition matrices.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

EASE_LAMBDAS = (25.0, 50.0, 100.0, 200.0, 300.0, 500.0, 800.0, 1200.0)
RP3_GRID = tuple(itertools.product((0.5, 0.75, 1.0), (0.2, 0.35, 0.5)))  # (alpha, beta)


@dataclass(frozen=True)
class Holdout:
    train: pd.DataFrame  # u, i, r, t
    test: dict[int, set[int]]  # user -> held-out items


@dataclass(frozen=True)
class Tuned:
    tops: dict[int, np.ndarray]
    params: Any
    seconds: float  # the chosen setting's fit


def holdout(ratings: pd.DataFrame, minimum: int = 1) -> Holdout:
    """Per user with `minimum` positives (ratings >= 4) or more, the last 20% (rounded up) of them are held
    out, and the user keeps the ratings before the first held-out one (ratings sorted by time, item)."""
    train_parts, test = [], {}
    for user, rows in ratings.groupby("u", sort=False):
        positives = np.flatnonzero(rows["r"].to_numpy() >= 4)
        if positives.size < max(minimum, 1):
            train_parts.append(rows)
            continue
        first_test = positives[-math.ceil(0.2 * positives.size)]
        train_parts.append(rows.iloc[:first_test])
        test[int(user)] = set(rows["i"].iloc[positives[positives >= first_test]].tolist())
    return Holdout(pd.concat(train_parts), test)


def positives(train: pd.DataFrame, shape: tuple[int, int]) -> sp.csr_matrix:
    liked = train[train["r"] >= 4]
    return sp.csr_matrix((np.ones(len(liked)), (liked["u"], liked["i"])), shape=shape)


def ease(x: sp.csr_matrix, lam: float) -> np.ndarray:
    gram = (x.T @ x).toarray()
    precision = np.linalg.inv(gram + lam * np.eye(gram.shape[0]))
    weights = -precision / np.diag(precision)
    np.fill_diagonal(weights, 0.0)
    return weights


def rp3beta(x: sp.csr_matrix, params: tuple[float, float]) -> np.ndarray:
    alpha, beta = params
    degree = np.asarray(x.sum(axis=0)).ravel()
    user_to_item = sp.diags(1.0 / np.maximum(np.asarray(x.sum(axis=1)).ravel(), 1.0)) @ x
    item_to_user = sp.diags(1.0 / np.maximum(degree, 1.0)) @ x.T.tocsr()
    user_to_item.data **= alpha
    item_to_user.data **= alpha
    weights = (item_to_user @ user_to_item).toarray() / np.maximum(degree, 1.0)[None, :] ** beta
    np.fill_diagonal(weights, 0.0)
    return weights


Measure = Callable[[dict[int, np.ndarray], dict[int, set[int]]], float]
Top = Callable[[np.ndarray, Holdout], dict[int, np.ndarray]]


def tuned(
    fit: Callable[[sp.csr_matrix, Any], np.ndarray],
    grid: tuple[Any, ...],
    tune_on: Holdout,
    measure_on: Holdout,
    shape: tuple[int, int],
    top: Top,
    ndcg: Measure,
) -> Tuned:
    """The setting of `grid` with the best NDCG@10 on `tune_on`, refitted on `measure_on`'s training set;
    its top lists for `measure_on`'s users. tune_on = measure_on is tuning on the test set."""
    x = positives(tune_on.train, shape)
    scores = {p: ndcg(top(x @ fit(x, p), tune_on), tune_on.test) for p in grid}
    best = max(grid, key=lambda p: scores[p])
    x = positives(measure_on.train, shape)
    started = time.perf_counter()
    weights = fit(x, best)
    seconds = time.perf_counter() - started
    return Tuned(top(x @ weights, measure_on), best, seconds)
