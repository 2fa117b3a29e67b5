"""The live store, measured through the real service (`python -m benchmarks.live_store`):

- intake: events acknowledged per second by one server process, batches of 500, from 1 and 4 clients
  (target: 20,000/s on a 2-core machine);
- visibility: how long after UpsertItems returns an item set out of stock is gone from Recommend on
  every one of two worker processes (target: within 1 s);
- cold items: on the demo world, the items first seen in the last 10% of the time line are held out of
  training and added afterwards through UpsertItems; for each user who later chose one, the new items of
  its category are ranked by the service (the order Recommend gives them) and by the baseline, the most
  popular new items of the category (popularity counted over the held-out period itself, which no real
  system has at the time: a strong baseline). Recall@10 and NDCG@10 of the items the user chose.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import threading
import time
import uuid
from pathlib import Path

import grpc
import numpy as np
import pandas as pd
from google.protobuf.timestamp_pb2 import Timestamp

from benchmarks import load
from service.pb.shifu.v1 import catalog_pb2 as cpb
from service.pb.shifu.v1 import catalog_pb2_grpc, events_pb2_grpc, recommend_pb2_grpc
from service.pb.shifu.v1 import events_pb2 as epb
from service.pb.shifu.v1 import recommend_pb2 as rpb
from training import demo
from training.readers import read_items

BATCH = 500
K = 10
POSITIVE = ("click", "cart", "order")


def _events(n: int, run: str) -> list[epb.Event]:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    kinds = ("impression", "view", "click", "cart", "order")
    return [
        epb.Event(
            event_id=f"{run}-{k}",
            timestamp=stamp,
            user_id=f"u{k % 5000:05d}",
            item_id=f"i{k % 2000:05d}",
            event_type=kinds[k % 5],
            touchpoint="home_feed",
            scene="browse",
        )
        for k in range(n)
    ]


def intake(model_dir: Path, clients: int, seconds: float = 5.0) -> float:
    """Events acknowledged per second by one process, `clients` sending batches of BATCH at once."""
    with tempfile.TemporaryDirectory(prefix="shifu-intake-") as state:
        extra = ("--state-dir", state, "--threads", "2")
        with load.service_process(model_dir, 1, extra) as port:
            pool = [_events(BATCH, f"{uuid.uuid4().hex}-{c}") for c in range(clients)]
            done = [0] * clients
            deadline = time.perf_counter() + seconds

            def send(c: int) -> None:
                with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                    stub = events_pb2_grpc.EventServiceStub(channel)
                    n = 0
                    while time.perf_counter() < deadline:
                        for e, event in enumerate(pool[c]):
                            event.event_id = f"{c}-{n}-{e}"
                        stub.RecordEvents(epb.RecordEventsRequest(events=pool[c]), timeout=30)
                        done[c] += BATCH
                        n += 1

            started = time.perf_counter()
            threads = [threading.Thread(target=send, args=(c,)) for c in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return sum(done) / (time.perf_counter() - started)


def visibility(model_dir: Path, trials: int = 10) -> list[float]:
    """Seconds from UpsertItems returning to the item being gone on both workers (12 fresh connections in
    a row answering without it, which reaches both processes with probability 1 − 2^-11)."""
    delays = []
    with (
        tempfile.TemporaryDirectory(prefix="shifu-visibility-") as state,
        load.service_process(model_dir, 2, ("--state-dir", state)) as port,
    ):
        target = f"127.0.0.1:{port}"
        with grpc.insecure_channel(target) as channel:
            catalog = catalog_pb2_grpc.CatalogServiceStub(channel)
            recommend = recommend_pb2_grpc.RecommendServiceStub(channel)
            for trial in range(trials):
                user = f"u{trial * 37:05d}"
                item = recommend.Recommend(rpb.RecommendRequest(user_id=user, limit=3), timeout=10).items[0]
                change = cpb.CatalogItem(item_id=item.item_id, in_stock=False)
                catalog.UpsertItems(cpb.UpsertItemsRequest(items=[change]), timeout=10)
                changed = time.perf_counter()
                clean, gone_at = 0, changed  # the start of the run of answers without the item
                while clean < 12 and time.perf_counter() - changed < 10:
                    asked = time.perf_counter()
                    with grpc.insecure_channel(target, options=[("shifu.fresh", uuid.uuid4().hex)]) as fresh:
                        answer = recommend_pb2_grpc.RecommendServiceStub(fresh).Recommend(
                            rpb.RecommendRequest(user_id=user, limit=3), timeout=10
                        )
                    if item.item_id in [i.item_id for i in answer.items]:
                        clean = 0
                    else:
                        gone_at = asked if clean == 0 else gone_at
                        clean += 1
                delays.append(gone_at - changed if clean == 12 else math.nan)
    return delays


def cold_items(directory: Path) -> dict[str, dict[str, float]]:
    world = demo.generate(directory / "world", seed=7)
    events = pd.read_csv(world["events.csv"], dtype={"value": str}, keep_default_na=False)
    events["t"] = pd.to_datetime(events["timestamp"], utc=True)
    cut = events["t"].min() + 0.9 * (events["t"].max() - events["t"].min())
    first_seen = events.groupby("item_id")["t"].min()
    new_items = set(first_seen[first_seen >= cut].index)
    items, _ = read_items(world["items.csv"])
    old = events[~events["item_id"].isin(new_items)].drop(columns="t")
    old.to_csv(directory / "events-old.csv", index=False)
    raw_items = pd.read_csv(world["items.csv"], dtype=str, keep_default_na=False)
    raw_items[~raw_items["item_id"].isin(new_items)].to_csv(directory / "items-old.csv", index=False)
    models = directory / "models"
    load.run_training(directory / "events-old.csv", directory / "items-old.csv", models, world["users.csv"])

    later = events[(events["t"] >= cut) & events["event_type"].isin(POSITIVE)]
    chosen = later[later["item_id"].isin(new_items)]
    category = items.set_index("item_id")["category"]
    popularity = chosen.groupby("item_id").size()
    new_by_category = {
        c: sorted(ids, key=lambda i: (-popularity.get(i, 0), i))
        for c, ids in pd.Series(sorted(new_items)).groupby(category.reindex(sorted(new_items)).to_numpy())
    }
    rows: dict[str, list[tuple[float, float]]] = {
        "Shifu (content, via UpsertItems)": [],
        "most popular new": [],
    }
    with (
        load.service_process(models, 1, ("--state-dir", str(directory / "state"))) as port,
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        catalog = catalog_pb2_grpc.CatalogServiceStub(channel)
        recommend = recommend_pb2_grpc.RecommendServiceStub(channel)
        additions = [
            cpb.CatalogItem(
                item_id=row.item_id,
                title=row.title,
                category=row.category,
                brand=row.brand,
                price=float(row.price) if not math.isnan(row.price) else None,
                in_stock=True,
                tags=cpb.Tags(values=list(row.tags)),
            )
            for row in items[items["item_id"].isin(new_items)].itertuples()
        ]
        for start in range(0, len(additions), 1000):
            catalog.UpsertItems(cpb.UpsertItemsRequest(items=additions[start : start + 1000]), timeout=30)
        for (user, kind), rows_ in chosen.assign(c=chosen["item_id"].map(category)).groupby(["user_id", "c"]):
            relevant = set(rows_["item_id"])
            answer = recommend.Recommend(
                rpb.RecommendRequest(
                    user_id=user,
                    limit=500,
                    filter=rpb.ItemFilter(include_categories=[kind], stock=rpb.STOCK_FILTER_ANY),
                ),
                timeout=30,
            )
            ours = [i.item_id for i in answer.items if i.item_id in new_items][:K]
            rows["Shifu (content, via UpsertItems)"].append(_metrics(ours, relevant))
            rows["most popular new"].append(_metrics(new_by_category[kind][:K], relevant))
    summary = {
        name: {"recall": float(np.mean([r for r, _ in v])), "ndcg": float(np.mean([n for _, n in v]))}
        for name, v in rows.items()
    }
    summary["counts"] = {"new_items": float(len(new_items)), "queries": float(len(rows["most popular new"]))}
    return summary


def _metrics(ranked: list[str], relevant: set[str]) -> tuple[float, float]:
    gains = [1.0 / math.log2(rank + 2) for rank, item in enumerate(ranked) if item in relevant]
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(relevant), K)))
    return len(gains) / len(relevant), sum(gains) / ideal


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.live_store", description=__doc__)
    parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="shifu-live-") as tmp:
        directory = Path(tmp)
        cold = cold_items(directory)
        models = directory / "models"
        for clients in (1, 4):
            rate = intake(models, clients)
            print(
                f"intake, 1 process, batches of {BATCH}, {clients} client(s): {rate:,.0f} events/s "
                "(target 20,000)"
            )
        delays = visibility(models)
        print(
            f"out-of-stock visible on both of 2 workers after: median {np.nanmedian(delays) * 1000:.0f} ms, "
            f"max {np.nanmax(delays) * 1000:.0f} ms over {len(delays)} changes (target 1,000 ms)"
        )
    counts = cold.pop("counts")
    print(
        f"cold items (demo, {counts['new_items']:.0f} items first seen in the last 10% of the time line, "
        f"{counts['queries']:.0f} user × category queries):"
    )
    for name, values in cold.items():
        print(f"  {name:<34} recall@{K} {values['recall']:.4f}  NDCG@{K} {values['ndcg']:.4f}")


if __name__ == "__main__":
    main()
