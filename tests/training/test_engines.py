"""The two SQL engines agree: DuckDB and Spark read, check, split and aggregate the same log to the same
numbers, and a version trained with Spark (MLlib's ALS included) publishes and serves."""

from __future__ import annotations

import dataclasses
import gzip
import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pandas as pd
import pytest

from models import versions
from service.pb.shifu.v1 import recommend_pb2, recommend_pb2_grpc
from tests.support import FAST_TRAINING, start_server
from training import engines
from training.event_store import Aggregates, EventStore, Part, QueryRows
from training.readers import DEFAULT_EVENT_WEIGHTS, DataError, ReadReport, read_items, read_users
from training.touchpoint_report import touchpoint_report
from training.train import train

pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(
        shutil.which("java") is None, reason="Spark needs Java (apt-get install openjdk-17-jre-headless)"
    ),
]


@pytest.fixture(scope="module")
def log(world: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo log as a folder of partitions in every format, with broken records among them."""
    folder = tmp_path_factory.mktemp("partitions")
    events = pd.read_csv(world["events.csv"], dtype=str, keep_default_na=False)
    half = len(events) // 2
    events.iloc[:half].to_csv(folder / "day-1.csv", index=False)
    with gzip.open(folder / "day-2.jsonl.gz", "wt") as lines:
        lines.write(events.iloc[half:].to_json(orient="records", lines=True))
        lines.write('not json\n["a list"]\n{"timestamp": "yesterday", "user_id": "u", "item_id": "i",'
                    ' "event_type": "view"}\n')  # fmt: skip
    broken = events.iloc[:3].copy()
    broken.loc[broken.index[0], "event_type"] = "teleport"
    broken.loc[broken.index[1], "value"] = "lots"
    broken.to_csv(folder / "day-3.csv", index=False)  # and its third row repeats an event of day 1
    return folder


@dataclasses.dataclass
class Outcome:
    report: ReadReport
    parts: pd.DataFrame
    aggregates: dict[str, Aggregates]
    tests: dict[str, QueryRows]
    touchpoints: pd.DataFrame


def _run(engine_name: str, log: Path, world: dict[str, Path]) -> Outcome:
    items, _ = read_items(world["items.csv"])
    users, _ = read_users(world["users.csv"])
    with engines.opened(engine_name, memory_gb=1.0) as engine:
        store = EventStore(engine, DEFAULT_EVENT_WEIGHTS, items["item_id"].to_numpy().astype(str))
        report = store.load(log)
        store.split(DEFAULT_EVENT_WEIGHTS["click"], 0.2)
        parts = engine.frame("SELECT part, count(*) AS n FROM events GROUP BY part ORDER BY part")
        aggregates = {
            "plain": store.aggregates(Part.TEST_TRAIN, None, 2.0, users[["user_id", "city"]]),
            "decayed": store.aggregates(Part.EVERYTHING, 7.0, 2.0, users[["user_id", "city"]]),
        }
        tests = {Part.TEST_TRAIN.name: store.test_rows(Part.TEST_TRAIN)}  # the validation's: the same SQL
        return Outcome(report, parts, aggregates, tests, touchpoint_report(store))


@pytest.fixture(scope="module")
def outcomes(log: Path, world: dict[str, Path]) -> Iterator[dict[str, Outcome]]:
    # Spark runs on several shuffle partitions, as on a large log, so that results that depend on how
    # rows are spread over tasks (orderings, row numbers) would show here.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engines, "ROWS_PER_PARTITION", 5_000)  # 7 partitions
        yield {name: _run(name, log, world) for name in engines.ENGINES}


def test_a_local_spark_job_gets_a_shuffle_partition_per_million_events() -> None:
    assert [engines.local_partitions(n) for n in (0, 1, 999_999, 1_000_000, 1_000_001, 50_000_000)] == [
        1, 1, 1, 1, 2, 50,
    ]  # fmt: skip


@pytest.mark.parametrize("engine_name", engines.ENGINES)
def test_an_unreadable_file_is_a_data_error_naming_it(engine_name: str, tmp_path: Path) -> None:
    events = "timestamp,user_id,item_id,event_type\n" + "1790000000,u1,i1,view\n" * 2000
    truncated = gzip.compress(events.encode())[:-200]
    (tmp_path / "day-1.csv.gz").write_bytes(truncated)
    with engines.opened(engine_name, memory_gb=1.0) as engine:
        store = EventStore(engine, DEFAULT_EVENT_WEIGHTS, np.array(["i1"]))
        with pytest.raises(DataError, match=r"day-1\.csv\.gz"):
            store.load(tmp_path)


def test_both_engines_read_and_drop_the_same_records(outcomes: dict[str, Outcome]) -> None:
    duck, spark = outcomes["duckdb"].report, outcomes["spark"].report
    assert (duck.rows_read, duck.rows_kept) == (spark.rows_read, spark.rows_kept)
    assert duck.dropped == spark.dropped
    assert duck.dropped == {
        "malformed_line": 2, "malformed_timestamp": 1, "unknown_event_type": 1, "malformed_value": 1,
        "duplicate": 1,
    }  # fmt: skip
    pd.testing.assert_frame_equal(outcomes["duckdb"].parts, outcomes["spark"].parts, check_dtype=False)


def test_both_engines_give_the_same_aggregates(outcomes: dict[str, Outcome]) -> None:
    for name in ("plain", "decayed"):
        duck, spark = outcomes["duckdb"].aggregates[name], outcomes["spark"].aggregates[name]
        for field in dataclasses.fields(Aggregates):
            a, b = getattr(duck, field.name), getattr(spark, field.name)
            assert a.shape == b.shape, (name, field.name)
            if a.dtype.kind == "f" and name == "decayed":
                # Decayed weights are sums of floats: the engines add them in different orders.
                np.testing.assert_allclose(a, b, rtol=1e-6, err_msg=f"{name}.{field.name}")
            else:
                np.testing.assert_array_equal(a, b, err_msg=f"{name}.{field.name}")
    plain = outcomes["duckdb"].aggregates["plain"]
    assert plain.pair_confidence.size > 1000 and plain.positive_items.size > 100


def test_both_engines_give_the_same_queries_and_reports(outcomes: dict[str, Outcome]) -> None:
    duck, spark = (
        outcomes["duckdb"].tests[Part.TEST_TRAIN.name],
        outcomes["spark"].tests[Part.TEST_TRAIN.name],
    )
    assert len(duck.relevant) > 50 and len(duck.sessions) > 50
    pd.testing.assert_frame_equal(duck.relevant, spark.relevant, check_dtype=False)
    pd.testing.assert_frame_equal(duck.sessions, spark.sessions, check_dtype=False)
    pd.testing.assert_frame_equal(
        outcomes["duckdb"].touchpoints, outcomes["spark"].touchpoints, check_dtype=False
    )


def test_a_version_trained_with_spark_and_mllib_als_serves(
    world: dict[str, Path], model_dir: Path, tmp_path: Path
) -> None:
    (version,) = versions.list_versions(model_dir)  # trained with DuckDB and implicit, FAST_TRAINING
    duck = versions.read_manifest(model_dir / version)["metrics"]
    config = dataclasses.replace(FAST_TRAINING, engine="spark", als_engine="mllib", engine_memory_gb=1.0)
    paths = (world["events.csv"], world["items.csv"], world["users.csv"])
    spark = train(*paths, tmp_path / "spark", config).metrics
    for name in ("ease", "popularity", "lightfm"):  # the same aggregates: the same models
        assert spark[name]["overall"]["ndcg"] == pytest.approx(duck[name]["overall"]["ndcg"])
    # ALS itself differs (MLlib regularises per rating, implicit does not) but learns the same data.
    als_duck, als_spark = (m["als"]["overall"]["ndcg"] for m in (duck, spark))
    assert als_spark > 0.5 * als_duck, (als_spark, als_duck)
    running = start_server(tmp_path / "spark")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = recommend_pb2_grpc.RecommendServiceStub(channel)
            user = str(pd.read_csv(world["events.csv"], dtype=str)["user_id"].iloc[0])
            answer = stub.Recommend(recommend_pb2.RecommendRequest(user_id=user, limit=5), timeout=10)
        assert len(answer.items) == 5
    finally:
        running.shutdown()
