"""Random and malformed requests against every RPC of a real server (hypothesis): no crash, no hang, no
INTERNAL or UNKNOWN, and the server answers correctly afterwards.

`python -m benchmarks.fuzz [--cases 5000]` starts a server on the demo world's model and reports the
status codes seen per RPC. The strategies are built from the protobuf descriptors, so a field added to
the contract is fuzzed without changing this file; values mix realistic ones (known ids, coordinates
in a city, times of a working day) with extremes (NaN, infinities, huge and negative numbers, long
and non-ASCII strings, unknown enum numbers, out-of-range timestamps), and raw bytes that are not a
message at all.
"""

from __future__ import annotations

import argparse
import collections
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor as pd
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.dispatch.problem import WEIGHT_NAMES
from service.pb.shifu.v1 import catalog_pb2, dispatch_pb2, events_pb2, recommend_pb2

# The codes a well-behaved server may answer a random request with.
ALLOWED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}
RPCS: dict[str, type[Message]] = {
    "/shifu.v1.RecommendService/Recommend": recommend_pb2.RecommendRequest,
    "/shifu.v1.RecommendService/SimilarItems": recommend_pb2.SimilarItemsRequest,
    "/shifu.v1.RecommendService/DescribeModel": recommend_pb2.DescribeModelRequest,
    "/shifu.v1.DispatchService/AssignJobs": dispatch_pb2.AssignJobsRequest,
    "/shifu.v1.DispatchService/RankTechnicians": dispatch_pb2.RankTechniciansRequest,
    "/shifu.v1.DispatchService/OfferSlots": dispatch_pb2.OfferSlotsRequest,
    "/shifu.v1.CatalogService/UpsertItems": catalog_pb2.UpsertItemsRequest,
    "/shifu.v1.CatalogService/DeleteItems": catalog_pb2.DeleteItemsRequest,
    "/shifu.v1.CatalogService/GetItems": catalog_pb2.GetItemsRequest,
    "/shifu.v1.EventService/RecordEvents": events_pb2.RecordEventsRequest,
}
CALL_TIMEOUT_S = 2.0
DAY = 1_800_000_000  # a working day's midnight, Unix seconds

_ints = st.one_of(
    st.sampled_from([0, 1, 2, 3, 5, 10, -1, 2**31 - 1, -(2**31), 500, 501, 1000, 1001, 10_000, 10_001]),
    st.integers(-(2**31), 2**31 - 1),
)
_floats = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 1e7]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-200, 200),
)
_weird_text = st.one_of(
    st.sampled_from(["", " ", "\x00", "é", "上海", "a" * 257, "🙂" * 70, "../../etc/passwd", "%s%n"]),
    st.text(max_size=40),
)


@dataclass
class Vocabulary:
    """Realistic values, so that random requests also reach past validation into the models."""

    ids: list[str] = field(default_factory=lambda: ["u00001", "i00001", "t1", "j1", "browse", "home_feed"])

    def text(self) -> st.SearchStrategy[str]:
        return st.one_of(st.sampled_from(self.ids), _weird_text)


def _scalar(f: pd.FieldDescriptor, vocabulary: Vocabulary) -> st.SearchStrategy[Any]:
    t = pd.FieldDescriptor
    if f.type in (t.TYPE_DOUBLE, t.TYPE_FLOAT):
        if f.name in ("lat", "lng"):
            return st.one_of(st.floats(30.9, 31.5) if f.name == "lat" else st.floats(121.0, 121.9), _floats)
        return _floats
    if f.type in (t.TYPE_INT32, t.TYPE_SINT32, t.TYPE_SFIXED32):
        return _ints
    if f.type in (t.TYPE_INT64, t.TYPE_SINT64, t.TYPE_SFIXED64):
        if f.name == "seconds":
            return st.one_of(st.integers(DAY, DAY + 86_400), st.integers(-(2**40), 2**40))
        return st.integers(-(2**63), 2**63 - 1)
    if f.type in (t.TYPE_UINT32, t.TYPE_FIXED32):
        return st.integers(0, 2**32 - 1)
    if f.type in (t.TYPE_UINT64, t.TYPE_FIXED64):
        return st.integers(0, 2**64 - 1)
    if f.type == t.TYPE_BOOL:
        return st.booleans()
    if f.type == t.TYPE_STRING:
        return vocabulary.text()
    if f.type == t.TYPE_BYTES:
        return st.binary(max_size=32)
    if f.type == t.TYPE_ENUM:
        known = [v.number for v in f.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(-5, 50))
    raise TypeError(f"no strategy for field {f.full_name}")


def messages(
    descriptor: pd.Descriptor, vocabulary: Vocabulary, depth: int = 0
) -> st.SearchStrategy[dict[str, Any]]:
    """Field values for a message of this type (a dict, built into the message by `build`)."""
    entries: dict[str, st.SearchStrategy[Any]] = {}
    for f in descriptor.fields:
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            key = _scalar(f.message_type.fields_by_name["key"], vocabulary)
            value = _scalar(f.message_type.fields_by_name["value"], vocabulary)
            entries[f.name] = st.dictionaries(key, value, max_size=4) | st.dictionaries(
                key, value, min_size=33
            )
            continue
        if f.message_type is not None:
            if depth > 4:
                continue
            single = messages(f.message_type, vocabulary, depth + 1)
        else:
            single = _scalar(f, vocabulary)
        if f.is_repeated:
            many = 40 if f.name in ("jobs", "technicians", "values") else 4
            entries[f.name] = st.lists(single, max_size=many)
        else:
            entries[f.name] = single
    return st.fixed_dictionaries({}, optional=entries)


def build(message_type: type[Message], values: dict[str, Any]) -> Message:
    message = message_type()
    _fill(message, values)
    return message


def _fill(message: Message, values: dict[str, Any]) -> None:
    for name, value in values.items():
        f = message.DESCRIPTOR.fields_by_name[name]
        target = getattr(message, name)
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            target.update(value)
        elif f.message_type is not None and f.is_repeated:
            for item in value:
                _fill(target.add(), item)
        elif f.message_type is not None:
            target.SetInParent()
            _fill(target, value)
        elif f.is_repeated:
            target.extend(value)
        else:
            setattr(message, name, value)


_SKILLS = ["repair", "install", "clean", "electric"]


@st.composite
def dispatch_days(draw: st.DrawFn) -> dict[str, Any]:
    """An AssignJobsRequest that looks like a real day; in half of them, values pushed to extremes here
    and there (one in `dirt`). These reach the solvers, where wholly random messages are refused at
    validation."""
    dirt = draw(st.sampled_from([0, 0, 30, 8]))

    def value(realistic: st.SearchStrategy[Any], extreme: st.SearchStrategy[Any]) -> Any:
        if dirt and draw(st.integers(1, dirt)) == 1:
            return draw(extreme)
        return draw(realistic)

    def window(start_h: float, end_h: float) -> dict[str, Any]:
        start = value(st.integers(DAY + int(start_h * 3600), DAY + int(end_h * 3600)), _ints)
        end = value(st.integers(start, start + 10 * 3600), _ints)
        return {"start": {"seconds": start}, "end": {"seconds": end}}

    def point() -> dict[str, float]:
        return {"lat": value(st.floats(31.0, 31.4), _floats), "lng": value(st.floats(121.2, 121.7), _floats)}

    tech_ids = [f"t{i}" for i in range(draw(st.integers(0, 8)))]
    technicians = [
        {
            "technician_id": tech_id,
            "location": point(),
            "skills": draw(st.lists(st.sampled_from(_SKILLS), max_size=3, unique=True)),
            "tier": value(st.integers(0, 5), _ints),
            "max_jobs": value(st.integers(0, 6), _ints),
            "vehicle_capacity": value(st.floats(0, 20), _floats),
            "assigned_jobs": value(st.integers(0, 3), _ints),
            **_hours(draw, window, value),
            # A re-plan's technician ends the day at home, away from where it is now.
            **({"end_location": point()} if draw(st.booleans()) else {}),
        }
        for tech_id in tech_ids
    ]
    jobs = []
    for j in range(draw(st.integers(0, 25))):
        job: dict[str, Any] = {
            "job_id": f"j{j}",
            "location": point(),
            "required_skills": draw(st.lists(st.sampled_from(_SKILLS), max_size=2, unique=True)),
            "duration_minutes": value(st.integers(0, 180), _ints),
            "priority": value(st.integers(0, 5), _ints),
            "demand": value(st.floats(0, 5), _floats),
        }
        if draw(st.booleans()):
            job["time_window"] = window(8, 16)
        if tech_ids and draw(st.integers(0, 5)) == 0:
            job["pinned_technician_id"] = draw(st.sampled_from([*tech_ids, "nobody"]))
        if tech_ids and draw(st.integers(0, 2)) == 0:
            job["current_technician_id"] = value(st.sampled_from([*tech_ids, "nobody"]), st.just(""))
        jobs.append(job)
    n = len(tech_ids) + len(jobs) + sum("end_location" in t for t in technicians)
    options: dict[str, Any] = {
        "mode": value(st.sampled_from([0, 1, 2]), st.integers(-3, 9)),
        "capacity": value(st.sampled_from([0, 1, 2]), st.integers(-3, 9)),
        "time_limit_ms": value(st.integers(50, 400), _ints),
        "speed_kmh": value(st.floats(0, 60), _floats),
        "max_radius_km": value(st.sampled_from([0.0, 5.0, 30.0]), _floats),
    }
    if draw(st.integers(0, 3)) == 0:
        size = value(st.just(n * n), st.integers(0, 2 * n * n + 2))
        options["distance_matrix"] = {"values": [value(st.floats(0, 50), _floats) for _ in range(size)]}
    if draw(st.integers(0, 3)) == 0:
        options["weights"] = {
            name: value(st.floats(0, 1000), _floats) for name in WEIGHT_NAMES if draw(st.booleans())
        }
    return {"jobs": jobs, "technicians": technicians, "options": options}


def _hours(draw: st.DrawFn, window: Any, value: Any) -> dict[str, Any]:
    """A technician's working hours: none, a shift, or several days; a break in the middle of each in
    half of them (pushed to extremes as the day's other values are)."""
    kind = draw(st.sampled_from(["none", "shift", "shift", "days"]))
    days = value(st.integers(1, 3), st.integers(0, 40)) if kind == "days" else 1
    shifts = [window(7 + 24 * d, 10 + 24 * d) for d in range(days)] if kind != "none" else []
    hours: dict[str, Any] = {"shift": shifts[0]} if kind == "shift" else {"shifts": shifts}
    if draw(st.booleans()):
        middles = [(w["start"]["seconds"] + w["end"]["seconds"]) // 2 for w in shifts] or [DAY + 12 * 3600]
        hours["breaks"] = [
            {
                "window": {"start": {"seconds": value(st.just(m - 1800), _ints)}, "end": {"seconds": m}},
                "duration_minutes": value(st.integers(10, 30), _ints),
            }
            for m in middles
        ]
    return hours


@st.composite
def offer_requests(draw: st.DrawFn) -> tuple[str, bytes]:
    """An OfferSlotsRequest from a day: its first job to book, windows, the other jobs as the plan (most
    of them pinned, as a plan's jobs are; the others refused naming the field)."""
    day = draw(dispatch_days().filter(lambda d: bool(d["jobs"])))
    ids: list[str] = [t["technician_id"] for t in day["technicians"]]
    rest = day["jobs"][1:]
    # One planned job in 30 without its technician.
    loose: list[int] = draw(st.lists(st.integers(0, 29), min_size=len(rest), max_size=len(rest)))
    holders: list[str] = (
        draw(st.lists(st.sampled_from(ids), min_size=len(rest), max_size=len(rest))) if ids else []
    )
    plan = [
        {**job, "pinned_technician_id": holders[k]} if ids and loose[k] else job for k, job in enumerate(rest)
    ]
    windows = [
        {"start": {"seconds": DAY + h * 3600}, "end": {"seconds": DAY + (h + 2) * 3600}} for h in (8, 10, 12)
    ]
    request = {
        "job": day["jobs"][0],
        "windows": windows[: draw(st.integers(0, 3))],
        "jobs": plan,
        "technicians": day["technicians"],
        "options": day["options"],
    }
    return "/shifu.v1.DispatchService/OfferSlots", build(
        dispatch_pb2.OfferSlotsRequest, request
    ).SerializeToString()


def _typed(
    method: str, message_type: type[Message], vocabulary: Vocabulary
) -> st.SearchStrategy[tuple[str, bytes]]:
    descriptor: Any = message_type.DESCRIPTOR
    return messages(descriptor, vocabulary).map(
        lambda values: (method, build(message_type, values).SerializeToString())
    )


def requests(vocabulary: Vocabulary) -> st.SearchStrategy[tuple[str, bytes]]:
    """(method, request bytes): a random message of the method's type, a realistic dispatch day pushed
    to extremes here and there, or bytes that are no message at all."""
    typed = [_typed(method, message_type, vocabulary) for method, message_type in RPCS.items()]
    days = dispatch_days().map(
        lambda day: (
            "/shifu.v1.DispatchService/AssignJobs",
            build(dispatch_pb2.AssignJobsRequest, day).SerializeToString(),
        )
    )
    ranks = (
        dispatch_days()
        .filter(lambda day: bool(day["jobs"]))
        .map(
            lambda day: (
                "/shifu.v1.DispatchService/RankTechnicians",
                build(
                    dispatch_pb2.RankTechniciansRequest,
                    {"job": day["jobs"][0], "technicians": day["technicians"], "options": day["options"]},
                ).SerializeToString(),
            )
        )
    )
    raw = st.tuples(st.sampled_from(sorted(RPCS)), st.binary(max_size=64))
    return st.one_of(*typed, days, days, ranks, offer_requests(), raw)


def call(channel: grpc.Channel, method: str, payload: bytes) -> grpc.StatusCode:
    callable_: grpc.UnaryUnaryMultiCallable = channel.unary_unary(
        method, request_serializer=None, response_deserializer=None
    )
    try:
        callable_(payload, timeout=CALL_TIMEOUT_S)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def still_serving(channel: grpc.Channel) -> bool:
    answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    if answer.status != health_pb2.HealthCheckResponse.SERVING:
        return False
    reply = channel.unary_unary(
        "/shifu.v1.RecommendService/Recommend",
        request_serializer=recommend_pb2.RecommendRequest.SerializeToString,
        response_deserializer=recommend_pb2.RecommendResponse.FromString,
    )(recommend_pb2.RecommendRequest(user_id="u", limit=3), timeout=10)
    return len(reply.items) == 3


def fuzz(
    channel: grpc.Channel, vocabulary: Vocabulary, cases: int, seed: int | None = None
) -> collections.Counter[tuple[str, str]]:
    """Throws `cases` random requests; raises AssertionError on the first answer outside ALLOWED."""
    seen: collections.Counter[tuple[str, str]] = collections.Counter()

    @settings(
        max_examples=cases,
        deadline=None,
        database=None,
        derandomize=seed is not None,
        suppress_health_check=list(HealthCheck),
    )
    @given(requests(vocabulary))
    def one(case: tuple[str, bytes]) -> None:
        method, payload = case
        code = call(channel, method, payload)
        seen[(method.rsplit("/", 1)[1], code.name)] += 1
        assert code in ALLOWED, f"{method} answered {code.name} for {payload!r}"

    one()
    return seen


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fuzz", description=__doc__)
    parser.add_argument("--cases", type=int, default=5000)
    args = parser.parse_args(argv)
    from benchmarks.load import service_process

    with tempfile.TemporaryDirectory() as tmp:
        model_dir, vocabulary = prepare(Path(tmp))
        with (
            service_process(model_dir, 1, ("--max-solves", "1")) as port,
            grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
        ):
            started = time.perf_counter()
            seen = fuzz(channel, vocabulary, args.cases)
            seconds = time.perf_counter() - started
            healthy = still_serving(channel)
    total = sum(seen.values())
    print(f"{total} random requests in {seconds:.0f} s; server healthy afterwards: {healthy}")
    by_rpc: dict[str, dict[str, int]] = collections.defaultdict(dict)
    for (rpc, code), n in seen.items():
        by_rpc[rpc][code] = n
    for rpc, codes in sorted(by_rpc.items()):
        print(f"  {rpc:<16} " + ", ".join(f"{code} {n}" for code, n in sorted(codes.items())))
    if not healthy:
        sys.exit(1)


def prepare(directory: Path) -> tuple[Path, Vocabulary]:
    """A small demo world and a model trained on it; its ids become the vocabulary."""
    from training import demo
    from training.components import ModelConfig
    from training.train import TrainConfig, train

    world = demo.generate(
        directory / "world", seed=3, size=demo.DemoSize(users=300, items=200, technicians=20, jobs=40)
    )
    config = TrainConfig(
        model=ModelConfig.with_params(
            als={"factors": 8, "iterations": 4}, lightfm={"components": 8, "epochs": 2}
        )
    )
    train(world["events.csv"], world["items.csv"], world["users.csv"], directory / "models", config)
    return directory / "models", vocabulary_of(world)


def vocabulary_of(world: dict[str, Path]) -> Vocabulary:
    import pandas as pd_

    items = pd_.read_csv(world["items.csv"], dtype=str, keep_default_na=False)
    users = pd_.read_csv(world["users.csv"], dtype=str, keep_default_na=False)
    ids = (
        items["item_id"].head(20).tolist()
        + users["user_id"].head(20).tolist()
        + items["category"].unique().tolist()
    )
    return Vocabulary([*ids, "browse", "new_home", "home_feed", "cart", "repair", "city", "shanghai"])


if __name__ == "__main__":
    main()
