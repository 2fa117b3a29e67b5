"""Approximate retrieval for large catalogs: candidates first, then the exact blend on them.

Every component of a large catalog's blend is linear in a fixed item matrix: score = rows @ query (ALS's
factors, LightFM's embeddings with the item bias, popularity's columns per scene and city). That gives
two things without scoring the whole catalog:
- candidates: the blend of those components is one inner product over their rows side by side, so one
  HNSW graph (hnswlib, built at training time and saved with the version) finds its best items; plus,
  scored exactly every time, each component's `HEAD_ITEMS` items with the largest rows. Those are what
  a known user's inner products favour most, and what a graph reaches worst: on a 100,000-item catalog
  the graph alone found 47% of known users' top 100 (visitors 100%), with the heads 99.9%;
- the blend's standardisation over the whole catalog, exactly: the mean of rows @ q is mean(rows) @ q
  and its variance qᵀ cov(rows) q, so the candidates' blended scores are exactly the full blend's.

Below `MIN_ITEMS` items the whole catalog is scored (it is fast enough and exact).

hnswlib rather than faiss: on the same lifted rows, degree and effort (benchmarks/catalog.py), at
1,000,000 items faiss's graph found 75% of the top 100 in p99 9.4 ms and hnswlib's 100% in 0.5 ms."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.recommend.component import ArtifactError, Component

MIN_ITEMS = 50_000  # smaller catalogs are scored in full
HNSW_NEIGHBOURS = 32  # M: graph degree (recall against memory)
HNSW_BUILD_EFFORT = 100  # efConstruction
# The graph returns this many times the candidates asked for, all of them scored exactly: hnswlib's search
# breadth is max(ef, k) and ef is one global setting, so the breadth is set per call through k (on 200,000
# items, asking 400 for a 100-item answer found 97% of known users' answers, 800 found 99%).
SEARCH_BREADTH = 2
HEAD_ITEMS = 2000  # per component, the items with the largest rows, scored exactly on every query


@dataclass(frozen=True)
class Moments:
    """Mean and covariance of a component's item rows, for its scores' mean and deviation."""

    mean: np.ndarray  # float64 (d,)
    covariance: np.ndarray  # float64 (d, d)

    @classmethod
    def of(cls, rows: np.ndarray, chunk: int = 65_536) -> Moments:
        mean = rows.mean(axis=0, dtype=np.float64)
        second = np.zeros((rows.shape[1], rows.shape[1]))
        for start in range(0, rows.shape[0], chunk):  # in chunks: no float64 copy of a large matrix
            block = rows[start : start + chunk].astype(np.float64)
            second += block.T @ block
        return cls(mean, second / max(rows.shape[0], 1) - np.outer(mean, mean))

    def mean_std(self, query: np.ndarray) -> tuple[float, float]:
        q = query.astype(np.float64)
        return float(self.mean @ q), float(np.sqrt(max(float(q @ self.covariance @ q), 0.0)))


def build_index(rows: np.ndarray) -> dict[str, np.ndarray]:
    """An HNSW graph for the largest inner products with `rows`, as the arrays of hnswlib's own state
    (its pickling state is a dict of numbers and arrays: saved as arrays, no pickle).

    Inner product is not a distance, and a graph built on it leaves items unreachable (on the demo
    catalog it returned 92% of the top 100 when asked for every item). So each row gets one more
    coordinate, sqrt(R² − |row|²) with R the largest norm, and the graph is built on Euclidean distance:
    for a query with 0 there, |q − row|² = |q|² + R² − 2 q·row, so the nearest rows are the largest inner
    products (Bachrach et al. 2014)."""
    import hnswlib

    lifted = lift(rows)
    index = hnswlib.Index(space="l2", dim=lifted.shape[1])
    index.init_index(
        max_elements=lifted.shape[0], ef_construction=HNSW_BUILD_EFFORT, M=HNSW_NEIGHBOURS, random_seed=0
    )
    index.add_items(lifted, np.arange(lifted.shape[0]))
    (state,) = index.__getstate__()
    return {name: np.asarray(value) for name, value in state.items()}


def load_index(stored: Mapping[str, np.ndarray], n_items: int, dim: int) -> Any:
    """The graph `build_index` saved, checked against the version's items and rows. hnswlib trusts its
    state: a wrong size, neighbour or label would make it read out of bounds or return an item the
    version does not have, so all of them are checked first (a checksum catches corruption, not a
    state written wrong)."""
    import hnswlib

    state = {name: value.item() if value.ndim == 0 else value for name, value in stored.items()}
    try:
        m0, m = int(state["max_M0"]), int(state["max_M"])
        level0_links = 4 * (1 + m0)  # per element: a 4-byte count, then max_M0 neighbour ids (uint32)
        levels = np.asarray(state["element_levels"])
        expected = {
            "space": "l2",
            "dim": dim,
            "cur_element_count": n_items,
            "max_elements": n_items,
            "offset_level0": 0,
            "offset_data": level0_links,
            "label_offset": level0_links + 4 * dim,
            "size_data_per_element": level0_links + 4 * dim + 8,  # the vector, then an 8-byte label
            "size_links_per_element": 4 * (1 + m),
            "data_level0": n_items * (level0_links + 4 * dim + 8),
            "label_lookup_external": n_items,
            "label_lookup_internal": n_items,
            "element_levels": n_items,
            "max_level": int(levels.max(initial=0)),
            "link_lists": int(levels.sum(dtype=np.int64)) * 4 * (1 + m),
        }
        for name, want in expected.items():
            value = state[name]
            got = value.size if isinstance(value, np.ndarray) else value
            if got != want:
                raise ArtifactError(f"retrieval graph: {name} is {got}, expected {want}")
        _check_links(state, n_items, levels)
        index = hnswlib.Index.__new__(hnswlib.Index)
        index.__setstate__((state,))
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ArtifactError(f"retrieval graph: {error!r}") from error
    index.set_ef(1)  # the breadth is k (SEARCH_BREADTH)
    return index


def _check_links(state: Mapping[str, Any], n_items: int, levels: np.ndarray) -> None:
    """Every neighbour, label, level and the entry point of a graph state of the expected sizes."""
    if levels.min(initial=0) < 0 or not 0 <= int(state["enterpoint_node"]) < max(n_items, 1):
        raise ArtifactError("retrieval graph: a level or the entry point is out of range")
    for name in ("label_lookup_external", "label_lookup_internal"):
        if np.asarray(state[name]).max(initial=0) >= n_items:
            raise ArtifactError(f"retrieval graph: {name} names an item out of range")
    size, links, label = (int(state[k]) for k in ("size_data_per_element", "offset_data", "label_offset"))
    level0 = np.asarray(state["data_level0"]).view(np.uint8).reshape(n_items, size)
    upper = np.asarray(state["link_lists"]).view(np.uint8).reshape(-1, int(state["size_links_per_element"]))
    for where, block in (("level 0", level0[:, :links]), ("the upper levels", upper)):
        for start in range(0, block.shape[0], 65_536):  # in chunks: no copy of a large graph at once
            words = np.ascontiguousarray(block[start : start + 65_536]).view(np.uint32)
            counts = words[:, 0] & 0xFFFF  # hnswlib keeps a list's length in the low two bytes
            used = np.arange(words.shape[1] - 1)[None, :] < counts[:, None]
            if (counts >= words.shape[1]).any() or (words[:, 1:][used] >= n_items).any():
                raise ArtifactError(f"retrieval graph: a neighbour list at {where} is out of range")
    labels = np.ascontiguousarray(level0[:, label : label + 8]).view(np.uint64)
    if labels.max(initial=0) >= n_items:
        raise ArtifactError("retrieval graph: a label names an item out of range")


def lift(rows: np.ndarray) -> np.ndarray:
    """The rows with the coordinate that turns largest inner products into nearest neighbours."""
    wide = np.asarray(rows, dtype=np.float64)
    norms = np.einsum("ij,ij->i", wide, wide)
    extra = np.sqrt(np.maximum(norms.max(initial=0.0) - norms, 0.0))
    return np.ascontiguousarray(np.hstack([wide, extra[:, None]]), dtype=np.float32)


def linear_rows(components: Mapping[str, Component]) -> dict[str, np.ndarray]:
    """The item rows of the linear components, in the components' order."""
    rows = {name: component.item_rows() for name, component in components.items()}
    return {name: r for name, r in rows.items() if r is not None}


def build(components: Mapping[str, Component], n_items: int) -> dict[str, np.ndarray]:
    """What a version of `n_items` items is served with (nothing below MIN_ITEMS): one graph over the
    linear components' item rows side by side, and their names in that order."""
    linear = linear_rows(components)
    if n_items < MIN_ITEMS or not linear:  # (without a linear component every query scores in full)
        return {}
    stacked = np.hstack([rows.astype(np.float32) for rows in linear.values()])
    graph = {f"{GRAPH}.{name}": value for name, value in build_index(stacked).items()}
    return {**graph, COLUMNS: np.array(list(linear), dtype=str)}


GRAPH, COLUMNS = "graph", "columns"  # key prefix of the graph's state, and the components' names


class Retrieval:
    """Candidates and exact moments for the linear components of one version. The blend of those
    components is one inner product over their rows side by side, so one graph search finds its best
    items. Thread-safe: hnswlib searches may run concurrently (they only read the graph)."""

    def __init__(self, components: Mapping[str, Component], stored: Mapping[str, np.ndarray]) -> None:
        linear = linear_rows(components)
        graph = {key.split(".", 1)[1]: value for key, value in stored.items() if key.startswith(f"{GRAPH}.")}
        if COLUMNS not in stored or not graph or len(graph) + 1 != len(stored):
            raise ArtifactError(
                f"retrieval arrays {sorted(stored)}, expected {GRAPH}.* and {COLUMNS} (a version trained "
                "before the graph was hnswlib's: train it again)"
            )
        names = stored[COLUMNS].tolist()
        if not linear or names != list(linear):
            raise ArtifactError(
                f"retrieval index over {names}, the version's linear components are {list(linear)}"
            )
        self.moments = {name: Moments.of(rows) for name, rows in linear.items()}
        self._slices, start = {}, 0
        for name, rows in linear.items():
            self._slices[name] = slice(start, start + rows.shape[1])
            start += rows.shape[1]
        self._dim = start + 1  # the rows and the lifting coordinate (build_index)
        n_items = next(iter(linear.values())).shape[0]
        self._index = load_index(graph, n_items, self._dim)
        heads = [
            np.argsort(-np.einsum("ij,ij->i", r, r), kind="stable")[:HEAD_ITEMS] for r in linear.values()
        ]
        self._head = np.unique(np.concatenate(heads))
        self._head_rows = np.hstack([r[self._head] for r in linear.values()]).astype(np.float32)

    def covers(self, names: set[str]) -> bool:
        """Whether these components can all be retrieved (else the whole catalog is scored)."""
        return all(name in self._slices for name in names)

    def combined(self, queries: Mapping[str, np.ndarray]) -> np.ndarray:
        """One query over the rows side by side (zeros for components without one)."""
        combined = np.zeros(self._dim, dtype=np.float32)  # the lifting coordinate's stays 0
        for name, query in queries.items():
            combined[self._slices[name]] = query
        return combined

    def candidates(self, queries: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """About the `n` items with the largest sum of each component's rows @ its query."""
        combined = self.combined(queries)
        k = min(SEARCH_BREADTH * n, self._index.element_count)
        found, _ = self._index.knn_query(combined[None], k=k, num_threads=1)
        head_scores = self._head_rows @ combined[:-1]
        best_heads = self._head[np.argpartition(-head_scores, min(n, head_scores.size) - 1)[:n]]
        return np.union1d(found[0].astype(np.int64), best_heads)
