"""The live store through a real server: catalog changes answered at once and kept across restarts,
new items recommended without retraining, events recorded durably (through kill -9) for the next
training, and all of it across worker processes."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
import pandas as pd
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2, status_pb2

from service.pb.shifu.v1 import catalog_pb2 as cpb
from service.pb.shifu.v1 import catalog_pb2_grpc, events_pb2_grpc, recommend_pb2_grpc
from service.pb.shifu.v1 import events_pb2 as epb
from service.pb.shifu.v1 import recommend_pb2 as rpb
from tests.support import FAST_TRAINING, free_port, kill_mid_stream, start_server, wait_for_health
from training.event_store import read_events
from training.train import train

ROOT = Path(__file__).resolve().parents[2]
ANY_STOCK = rpb.ItemFilter(stock=rpb.STOCK_FILTER_ANY)


def stubs(port: int) -> tuple:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("shifu.test", uuid.uuid4().hex)])
    return (
        channel,
        catalog_pb2_grpc.CatalogServiceStub(channel),
        recommend_pb2_grpc.RecommendServiceStub(channel),
        events_pb2_grpc.EventServiceStub(channel),
    )


def recommended(recommend, **request) -> list[str]:
    answer = recommend.Recommend(rpb.RecommendRequest(**request), timeout=10)
    return [item.item_id for item in answer.items]


def now_stamp(offset_s: float = 0.0) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int((time.time() + offset_s) * 1e9))
    return stamp


def event(n: int, user: str, item: str, kind: str = "view", run: str = "") -> epb.Event:
    return epb.Event(
        event_id=f"{run}e{n}",
        timestamp=now_stamp(),
        user_id=user,
        item_id=item,
        event_type=kind,
        touchpoint="home_feed",
        scene="browse",
        recommendation_id=f"r{n}",
    )


def field_violation(error: grpc.RpcError) -> str:
    trailers: dict[str, Any] = dict(error.trailing_metadata())  # type: ignore[arg-type]
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    bad = error_details_pb2.BadRequest()
    status.details[0].Unpack(bad)
    return bad.field_violations[0].field


@pytest.fixture(scope="module")
def server(model_dir: Path):
    running = start_server(model_dir)
    yield running
    running.shutdown()


def test_a_partial_update_changes_only_the_fields_it_sets(server, world) -> None:
    items = pd.read_csv(world["items.csv"], dtype=str, keep_default_na=False)
    item = items.iloc[5]
    _, catalog, _, _ = stubs(server.port)
    before = catalog.GetItems(cpb.GetItemsRequest(item_ids=[item["item_id"]]), timeout=10).items[0]
    catalog.UpsertItems(cpb.UpsertItemsRequest(items=[cpb.CatalogItem(item_id=item["item_id"], price=1.5)]))
    after = catalog.GetItems(cpb.GetItemsRequest(item_ids=[item["item_id"], "nope"]), timeout=10)
    assert after.items[0].price == 1.5 and after.missing_item_ids == ["nope"]
    assert (after.items[0].title, after.items[0].category, after.items[0].brand) == (
        before.title,
        before.category,
        before.brand,
    )
    assert list(after.items[0].tags) == list(before.tags) and after.items[0].trained


def test_sold_out_and_deleted_items_leave_recommend_at_once(server) -> None:
    _, catalog, recommend, _ = stubs(server.port)
    first, second = recommended(recommend, user_id="u00003", limit=5)[:2]
    catalog.UpsertItems(cpb.UpsertItemsRequest(items=[cpb.CatalogItem(item_id=first, in_stock=False)]))
    catalog.DeleteItems(cpb.DeleteItemsRequest(item_ids=[second]))
    answer = recommended(recommend, user_id="u00003", limit=5)
    assert first not in answer and second not in answer
    assert first in recommended(recommend, user_id="u00003", limit=50, filter=ANY_STOCK)
    assert second not in recommended(recommend, user_id="u00003", limit=50, filter=ANY_STOCK)
    gone = catalog.GetItems(cpb.GetItemsRequest(item_ids=[second]), timeout=10)
    assert list(gone.missing_item_ids) == [second]


def test_a_new_item_is_recommended_for_its_category_without_retraining(server, world) -> None:
    items = pd.read_csv(world["items.csv"], dtype=str, keep_default_na=False)
    lamp = items[items["category"] == "floor_lamp"].iloc[0]
    _, catalog, recommend, _ = stubs(server.port)
    new = cpb.CatalogItem(
        item_id="new-lamp-1",
        title="Nordic floor lamp, new",
        category="floor_lamp",
        brand=lamp["brand"],
        price=float(lamp["price"]),
        tags=cpb.Tags(values=lamp["tags"].split("|")),
    )
    answer = catalog.UpsertItems(cpb.UpsertItemsRequest(items=[new]), timeout=10)
    assert (answer.added, answer.updated) == (1, 0)
    lamps = rpb.ItemFilter(include_categories=["floor_lamp"])
    found = recommend.Recommend(rpb.RecommendRequest(user_id="u00003", limit=200, filter=lamps), timeout=10)
    new_one = [item for item in found.items if item.item_id == "new-lamp-1"]
    assert new_one and new_one[0].reasons[0].code == rpb.REASON_CODE_NEW_IN_CATEGORY
    assert new_one[0].reasons[0].text == "New in floor lamp"
    similar = recommend.SimilarItems(rpb.SimilarItemsRequest(item_id=lamp["item_id"], limit=20), timeout=10)
    assert "new-lamp-1" in [item.item_id for item in similar.items]
    read_back = catalog.GetItems(cpb.GetItemsRequest(item_ids=["new-lamp-1"]), timeout=10).items[0]
    assert not read_back.trained and read_back.category == "floor_lamp"


def test_an_unknown_item_without_a_category_is_refused_naming_the_field(server) -> None:
    _, catalog, _, _ = stubs(server.port)
    with pytest.raises(grpc.RpcError) as caught:
        catalog.UpsertItems(
            cpb.UpsertItemsRequest(
                items=[cpb.CatalogItem(item_id="ok", category="lamp"), cpb.CatalogItem(item_id="x")]
            )
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violation(caught.value) == "items[1].category"
    assert list(catalog.GetItems(cpb.GetItemsRequest(item_ids=["ok"]), timeout=10).missing_item_ids) == ["ok"]


def test_a_bad_event_refuses_the_whole_batch_with_its_index_and_field(server) -> None:
    _, _, _, events = stubs(server.port)
    batch = [event(1, "u1", "i00001", run="bad"), event(2, "u1", "i00002", kind="like", run="bad")]
    with pytest.raises(grpc.RpcError) as caught:
        events.RecordEvents(epb.RecordEventsRequest(events=batch), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violation(caught.value) == "events[1].event_type"
    good = events.RecordEvents(epb.RecordEventsRequest(events=batch[:1]), timeout=10)
    assert (good.recorded, good.duplicates) == (1, 0)  # the refused batch wrote nothing


def test_recorded_events_are_the_session_of_the_users_next_recommend(server, world) -> None:
    items = pd.read_csv(world["items.csv"], dtype=str, keep_default_na=False)
    purifiers = items[items["category"] == "water_purifier"]["item_id"].tolist()[:2]
    _, _, recommend, events = stubs(server.port)
    before = recommended(recommend, user_id="fresh-visitor", limit=5)
    batch = [event(n, "fresh-visitor", item, run="session") for n, item in enumerate(purifiers)]
    events.RecordEvents(epb.RecordEventsRequest(events=batch), timeout=10)
    after = recommend.Recommend(rpb.RecommendRequest(user_id="fresh-visitor", limit=5), timeout=10)
    assert [i.item_id for i in after.items] != before
    codes = {r.code for item in after.items for r in item.reasons}
    assert rpb.REASON_CODE_SIMILAR_TO_SESSION in codes
    assert not set(purifiers) & {i.item_id for i in after.items}  # what they just saw is not offered again


def test_catalog_changes_survive_a_restart(model_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    running = start_server(model_dir, state_dir=state)
    try:
        _, catalog, _, _ = stubs(running.port)
        catalog.UpsertItems(
            cpb.UpsertItemsRequest(items=[cpb.CatalogItem(item_id="kept", title="Kept", category="sofa")])
        )
    finally:
        running.shutdown()
    again = start_server(model_dir, state_dir=state)
    try:
        _, catalog, _, _ = stubs(again.port)
        assert catalog.GetItems(cpb.GetItemsRequest(item_ids=["kept"]), timeout=10).items[0].title == "Kept"
    finally:
        again.shutdown()


def serve(model_dir: Path, state: Path, port: int, workers: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable, "-m", "service", "--model-dir", str(model_dir), "--port", str(port),
            "--metrics-port", "0", "--workers", str(workers), "--max-solves", "1",
            "--tiers-dir", str(state / "no-tiers"), "--state-dir", str(state), "--log-format", "text",
        ],
        cwd=ROOT, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


NEW_SOFA = cpb.CatalogItem(item_id="new-sofa", title="New sofa", category="sofa", price=3000.0)
SOFAS = rpb.ItemFilter(include_categories=["sofa"])


def on_every_worker(port: int, check) -> None:
    """`check` on the answers of 20 fresh connections: SO_REUSEPORT spreads them over the workers."""
    for _ in range(20):
        with stubs(port)[0] as fresh:
            check(recommend_pb2_grpc.RecommendServiceStub(fresh))


def test_two_workers_see_catalog_changes_within_a_second_and_after_kill_9(
    model_dir: Path, tmp_path: Path
) -> None:
    port, state = free_port(), tmp_path / "state"
    process = serve(model_dir, state, port, workers=2)
    try:
        channel, catalog, recommend, _ = stubs(port)
        wait_for_health(channel, "", 1, timeout_s=120)
        item = recommended(recommend, user_id="u00007", limit=3)[0]
        catalog.UpsertItems(
            cpb.UpsertItemsRequest(items=[cpb.CatalogItem(item_id=item, in_stock=False), NEW_SOFA])
        )
        time.sleep(1.0)
        on_every_worker(port, lambda stub: assert_changed(stub, item))
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    process = serve(model_dir, state, port, workers=2)
    try:
        channel, _, _, _ = stubs(port)
        wait_for_health(channel, "", 1, timeout_s=120)
        on_every_worker(port, lambda stub: assert_changed(stub, item))
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def assert_changed(recommend, sold_out: str) -> None:
    assert sold_out not in recommended(recommend, user_id="u00007", limit=3)
    assert "new-sofa" in recommended(recommend, user_id="u00007", limit=500, filter=SOFAS)


def test_acknowledged_events_survive_kill_9_once_each_and_train_the_next_version(
    model_dir: Path, world, tmp_path: Path
) -> None:
    port, state = free_port(), tmp_path / "state"
    users = pd.read_csv(world["users.csv"], dtype=str)["user_id"].tolist()[:50]
    items = pd.read_csv(world["items.csv"], dtype=str)["item_id"].tolist()[:200]
    kinds = ("impression", "view", "click")
    batches = [
        [event(b * 100 + n, users[n % 50], items[(b * 7 + n) % 200], kinds[n % 3], "k") for n in range(100)]
        for b in range(400)
    ]
    process = serve(model_dir, state, port, workers=2)
    channel, _, _, events = stubs(port)
    wait_for_health(channel, "", 1, timeout_s=120)

    def record(batch: list[Any]) -> list[str]:
        events.RecordEvents(epb.RecordEventsRequest(events=batch), timeout=5)
        return [e.event_id for e in batch]

    # Killed mid-intake, after 50 of 400 batches (a fast machine sends all 400 in 1.5 s).
    acknowledged = kill_mid_stream(process, (functools.partial(record, b) for b in batches), 5_000)
    assert 0 < len(acknowledged) < 40_000

    def on_disk() -> list[str]:
        return [
            json.loads(line)["event_id"]
            for path in (state / "events").glob("*/*.jsonl")
            for line in path.read_text().splitlines()
            if line.endswith("}")
        ]

    written = on_disk()
    assert set(acknowledged) <= set(written)
    assert len(written) == len(set(written))

    # The client sends again what it had not seen acknowledged, and some it had: nothing twice.
    process = serve(model_dir, state, port, workers=1)
    try:
        channel, _, _, events = stubs(port)
        wait_for_health(channel, "", 1, timeout_s=120)
        done = len(acknowledged) // 100
        for batch in batches[max(done - 2, 0) : done + 2]:
            events.RecordEvents(epb.RecordEventsRequest(events=batch), timeout=10)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    written = on_disk()
    assert len(written) == len(set(written)) and set(written) >= {
        e.event_id for b in batches[: done + 2] for e in b
    }

    frame, _ = read_events(
        state / "events", {"impression": 0.0, "view": 1.0, "click": 2.0, "cart": 4.0, "order": 8.0}
    )
    assert len(frame) == len(written)
    # The next training reads the service's folder beside the world's log.
    (state / "events" / "history.csv").write_bytes(world["events.csv"].read_bytes())
    result = train(
        state / "events", world["items.csv"], world["users.csv"], tmp_path / "models", FAST_TRAINING
    )
    assert result.reports[1].rows_kept >= len(written)
    report = pd.read_csv(result.version_dir / "touchpoint_report.csv")
    assert report.loc[report["touchpoint"] == "home_feed", "impressions"].sum() >= sum(
        1 for b in batches[: done + 2] for e in b if e.event_type == "impression"
    )
