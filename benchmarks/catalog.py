"""Recommend latency on a large generated catalog, through the real training job and the real service.

    python -m benchmarks.catalog [--items 200000 1000000] [--users 20000] [--calls 3000] [--work DIR]
                                 [--no-libraries]

Above models/recommend/retrieval.py's threshold the version carries HNSW indexes built by training;
this measures the answers' recall@100 against scoring the whole catalog, hnswlib (the service's)
beside faiss on the same item rows, Recommend latency at concurrency 1 and 16 and throughput with 1 and 2
processes, and each process's memory.

The catalog has a few hundred categories of very different sizes; users favour a few categories and,
within them, popular items; their events are views, clicks, carts and orders. Requests are a mix of
known users, visitors with session items and anonymous visitors, each in a scene and at a touchpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks import load
from models import versions
from models.recommend import retrieval
from models.recommend.artifact import RecommenderArtifact
from models.recommend.recommender import Query, Recommender
from service.pb.shifu.v1 import recommend_pb2

SCENES = ["browse", "new_home", "after_order", "service_reminder"]
TOUCHPOINTS = ["home_feed", "category_page", "product_page", "cart"]


def generate(out: Path, n_items: int, n_users: int, seed: int) -> dict[str, Path]:
    rng = np.random.default_rng(seed)
    n_categories = max(10, n_items // 2000)
    category = np.minimum(rng.zipf(1.3, n_items) - 1, n_categories - 1)
    items = pd.DataFrame(
        {
            "item_id": [f"i{i:06d}" for i in range(n_items)],
            "title": [f"item {i}" for i in range(n_items)],
            "category": [f"c{c:03d}" for c in category],
            "price": np.round(np.exp(rng.normal(5, 1, n_items)), 2),
            "in_stock": rng.random(n_items) > 0.05,
        }
    )
    by_category = [np.flatnonzero(category == c) for c in range(n_categories)]
    by_category = [members for members in by_category if members.size]
    per_user = rng.poisson(30, n_users) + 1
    user = np.repeat(np.arange(n_users), per_user)
    favourites = rng.integers(0, len(by_category), (n_users, 2))
    chosen = favourites[user, rng.integers(0, 2, user.size)]
    wander = rng.random(user.size) < 0.1
    chosen[wander] = rng.integers(0, len(by_category), wander.sum())
    sizes = np.array([m.size for m in by_category])
    rank = np.minimum(rng.zipf(1.2, user.size) - 1, sizes[chosen] - 1)

    item = np.array([by_category[c][r] for c, r in zip(chosen, rank, strict=True)])
    kind = rng.choice(["view", "click", "cart", "order"], size=user.size, p=[0.55, 0.25, 0.1, 0.1])
    events = pd.DataFrame(
        {
            "timestamp": 1_790_000_000 + rng.integers(0, 90 * 86400, user.size),
            "user_id": [f"u{u:06d}" for u in user],
            "item_id": items["item_id"].to_numpy()[item],
            "event_type": kind,
            "scene": rng.choice(SCENES, user.size),
            "touchpoint": rng.choice(TOUCHPOINTS, user.size),
        }
    ).drop_duplicates()
    paths = {"items": out / "items.csv", "events": out / "events.csv"}
    items.to_csv(paths["items"], index=False)
    events.to_csv(paths["events"], index=False)
    return paths


def requests(events: Path, n: int, seed: int) -> list[recommend_pb2.RecommendRequest]:
    rng = np.random.default_rng(seed)
    frame = pd.read_csv(events, usecols=["user_id", "item_id"])
    users = frame["user_id"].unique()
    result = []
    for i in range(n):
        scene, touchpoint = SCENES[i % len(SCENES)], TOUCHPOINTS[i % len(TOUCHPOINTS)]
        kind = i % 3
        request = recommend_pb2.RecommendRequest(limit=10, scene=scene, touchpoint=touchpoint)
        if kind == 0:
            request.user_id = str(users[rng.integers(len(users))])
        elif kind == 1:
            request.user_id = f"visitor-{i}"
            request.recent_item_ids.extend(
                frame["item_id"].sample(2, random_state=int(rng.integers(1 << 30)))
            )
        else:
            request.user_id = f"visitor-{i}"
        result.append(request)
    return result


ANN_CANDIDATES = 400  # per component, as the service asks for a 100-item answer
SEARCHED = retrieval.SEARCH_BREADTH * ANN_CANDIDATES  # what the graph returns for them: its search breadth
RECALL_LIMIT = 100


def _queries(model: Recommender, mix: list[recommend_pb2.RecommendRequest], limit: int) -> list[Query]:
    return [
        Query(user_id=r.user_id, scene=r.scene, touchpoint=r.touchpoint, limit=limit,
              recent_item_ids=tuple(r.recent_item_ids))
        for r in mix
    ]  # fmt: skip


def blend_recall(version: Path, mix: list[recommend_pb2.RecommendRequest]) -> dict:
    """Recall@100 of the served answers (candidates, then the exact blend) against scoring the whole
    catalog, over the request mix; and the share of queries that took the candidate path."""
    artifact = RecommenderArtifact.load(version)
    served = Recommender(artifact, "served")
    exact = Recommender(dataclasses.replace(artifact, retrieval={}), "exact")
    recalls, retrieved = [], 0
    for query in _queries(served, mix, RECALL_LIMIT):
        ctx = served.context(query, served.rules.default)
        retrieved += served.scorer.retrieve(ctx, ANN_CANDIDATES) is not None
        want = {i.item_id for i in exact.recommend(query)}
        got = {i.item_id for i in served.recommend(query)}
        recalls.append(len(want & got) / max(len(want), 1))
    return {"recall_at_100": float(np.mean(recalls)), "worst": float(np.min(recalls)),
            "retrieved_share": retrieved / len(mix)}  # fmt: skip


def ann_libraries(version: Path, mix: list[recommend_pb2.RecommendRequest]) -> list[dict]:
    """hnswlib (as the service builds and searches it) and faiss (the same degree, build and search effort
    and lifting) over the linear components' rows side by side: build time, and recall of what a search for
    a 100-item answer returns against the exact top 100 of the blend's query, with search latency."""
    import faiss

    artifact = RecommenderArtifact.load(version)
    model = Recommender(artifact, "served")
    scorer = model.scorer
    assert scorer.retrieval is not None, "the catalog is under the retrieval threshold"
    plain = np.hstack(list(retrieval.linear_rows(artifact.components).values()))
    rows = retrieval.lift(plain)  # what the graphs hold; the queries' last coordinate is 0
    queries = []
    for query in _queries(model, mix, RECALL_LIMIT):
        found = scorer.search_queries(model.context(query, model.rules.default))
        if found is not None:
            queries.append(scorer.retrieval.combined(found[0]))
    exact = [set(np.argpartition(-(rows @ q), RECALL_LIMIT)[:RECALL_LIMIT].tolist()) for q in queries]
    started = time.perf_counter()
    graph = retrieval.load_index(retrieval.build_index(plain), rows.shape[0], rows.shape[1])
    hnsw_build = time.perf_counter() - started
    started = time.perf_counter()
    other = faiss.IndexHNSWFlat(rows.shape[1], retrieval.HNSW_NEIGHBOURS, faiss.METRIC_L2)
    other.hnsw.efConstruction = retrieval.HNSW_BUILD_EFFORT
    other.add(rows)
    faiss_build = time.perf_counter() - started
    params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined, unused-ignore]  # (faiss is a bench extra)
    params.efSearch = SEARCHED
    results = []
    for library, build_s, search in (
        ("hnswlib", hnsw_build, partial(_hnswlib_search, graph)),
        ("faiss", faiss_build, partial(_faiss_search, other, params)),
    ):
        recall, p50, p99 = _measure(search, queries, exact)
        results.append({"library": library, "dims": rows.shape[1], "build_s": build_s,
                        "recall_at_100": recall, "p50_ms": p50, "p99_ms": p99})  # fmt: skip
    return results


def _faiss_search(graph: Any, params: Any, query: np.ndarray) -> np.ndarray:
    return graph.search(query[None], SEARCHED, params=params)[1][0]


def _hnswlib_search(graph: Any, query: np.ndarray) -> np.ndarray:
    return graph.knn_query(query[None], k=SEARCHED, num_threads=1)[0][0]


def _measure(
    search: Callable[[np.ndarray], np.ndarray], queries: list[np.ndarray], exact: list[set[int]]
) -> tuple[float, float, float]:
    """(mean recall@100, p50 ms, p99 ms) of one library's searches."""
    recalls, times = [], []
    for query, want in zip(queries, exact, strict=True):
        started = time.perf_counter()
        found = search(query.astype(np.float32))
        times.append(time.perf_counter() - started)
        recalls.append(len(want & set(np.asarray(found).tolist())) / RECALL_LIMIT)
    return (
        float(np.mean(recalls)),
        1000 * float(np.percentile(times, 50)),
        1000 * float(np.percentile(times, 99)),
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.catalog",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--items", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--work",
        type=Path,
        help="keep each size's catalog and trained version in DIR/<items> and reuse them when there "
        "(training a 1,000,000-item version takes a quarter of an hour; default: a temporary folder)",
    )
    parser.add_argument(
        "--no-libraries", dest="libraries", action="store_false", help="skip the faiss beside hnswlib builds"
    )
    args = parser.parse_args(argv)
    report: dict = {}
    for n_items in args.items:
        report[n_items] = _one_size(n_items, args)
    return report


def _one_size(n_items: int, args: argparse.Namespace) -> dict:
    with contextlib.ExitStack() as stack:
        if args.work is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="shifu-catalog-")))
        else:
            work = args.work / str(n_items)
            work.mkdir(parents=True, exist_ok=True)
        paths = {"items": work / "items.csv", "events": work / "events.csv"}
        if not all(p.exists() for p in paths.values()):
            paths = generate(work, n_items, args.users, args.seed)
        models = work / "models"
        train_seconds = float("nan")  # a version reused from an earlier run
        if not (models.exists() and versions.list_versions(models)):
            train_seconds = load.run_training(
                paths["events"], paths["items"], models, extra=("--lightfm-epochs", "10", "--force-promote")
            )
        version = models / versions.list_versions(models)[-1]
        mix = requests(paths["events"], 600, args.seed)
        recall = blend_recall(version, mix[:300])
        libraries = ann_libraries(version, mix[:300]) if args.libraries else []
        runs, memory = [], {}
        for workers in (1, 2):
            with load.service_process(models, workers) as port:
                memory[workers] = load.process_rss_bytes(load.pid_on_port(port))
                runs += [
                    (workers, load.run_load(port, mix, c, args.calls))
                    for c in ((1, 16) if workers == 1 else (16,))
                ]
    trained = "reused" if np.isnan(train_seconds) else f"{train_seconds:.0f} s (indexes included)"
    print(f"\n{n_items:,} items, {args.users:,} users; training job {trained}")
    print(f"answers from candidates vs the whole catalog: recall@100 {recall['recall_at_100']:.4f} (worst "
          f"query {recall['worst']:.2f}; {recall['retrieved_share']:.0%} of queries retrieved)")  # fmt: skip
    recall_of = f"recall@100 of {SEARCHED}"
    print(f"{'library':<9}{'dims':>5}{'build s':>9}{recall_of:>19}{'p50 ms':>8}{'p99 ms':>8}")
    for r in libraries:
        print(f"{r['library']:<9}{r['dims']:>5}{r['build_s']:>9.1f}{r['recall_at_100']:>19.4f}"
              f"{r['p50_ms']:>8.2f}{r['p99_ms']:>8.2f}")  # fmt: skip
    print("Recommend over gRPC (known users, visitors with a session, anonymous visitors in turn):")
    print(load.HEADER)
    for workers, result in runs:
        print(result.row(f"{workers} process{'es' if workers > 1 else ''}, {n_items:,} items"))
    for workers, sizes in memory.items():
        print(f"memory with {workers} process(es): " + ", ".join(f"{s / 2**30:.2f} GB" for s in sizes))
    target = 5.0 if n_items <= 200_000 else 10.0
    print(f"p99 at concurrency 1: {runs[0][1].p99_ms:.2f} ms (target ≤ {target:.0f} ms)")
    return {"train_seconds": train_seconds, "recall": recall, "libraries": libraries,
            "load": [{"workers": w, **vars(r)} for w, r in runs], "memory": memory}  # fmt: skip


if __name__ == "__main__":
    main()
