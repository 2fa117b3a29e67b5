"""Recommend latency on a large generated catalog, through the real training job and the real service.

    python -m benchmarks.catalog [--items 200000] [--users 20000] [--workers 2] [--calls 3000]

The catalog has a few hundred categories of very different sizes; users favour a few categories and,
within them, popular items; their events are views, clicks, carts and orders. Requests are a mix of
known users, visitors with session items and anonymous visitors, each in a scene and at a touchpoint.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import load
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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.catalog",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes (one process lets BLAS use both cores for one call)",
    )

    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="shifu-catalog-") as tmp:
        paths = generate(Path(tmp), args.items, args.users, args.seed)
        train_seconds = load.run_training(
            paths["events"],
            paths["items"],
            Path(tmp) / "models",
            extra=("--lightfm-epochs", "10", "--force-promote"),
        )
        mix = requests(paths["events"], 600, args.seed)
        with load.service_process(Path(tmp) / "models", args.workers) as port:
            results = [load.run_load(port, mix, c, args.calls) for c in (1, 16)]
    print(f"generated catalog: {args.items} items, {args.users} users; training job {train_seconds:.0f} s")
    print(
        f"Recommend over gRPC, {args.workers} server processes; known users, visitors with a session, "
        "anonymous visitors in turn:"
    )
    print(load.HEADER)
    for result in results:
        print(result.row(f"Shifu, {args.items} items"))
    print(f"p99 at concurrency 1: {results[0].p99_ms:.2f} ms (target ≤ 10 ms)")
    return {"train_seconds": train_seconds, "load": [vars(r) for r in results]}


if __name__ == "__main__":
    main()
