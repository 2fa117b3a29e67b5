"""Simulated storefront users for experiments through a real server: each user has a click propensity
drawn from a Beta, visits the touchpoints a few times, sees what Recommend answers and reports an
impression per item shown and, with their propensity (times `lift` in the `candidate` arm), a click on
the first item, every event carrying the answer's recommendation id.

Shared by tests/test_experiment_loop.py and benchmarks/experiments.py. A user's draws come from a
generator seeded by the user's number, so a run is the same whatever order the threads take.
"""

from __future__ import annotations

import time
import uuid
from concurrent import futures
from dataclasses import dataclass

import grpc
import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from service.pb.shifu.v1 import events_pb2, events_pb2_grpc, recommend_pb2, recommend_pb2_grpc


@dataclass(frozen=True)
class World:
    users: range  # user numbers; user n is f"{prefix}{n:06d}"
    visits: int = 3  # per user and touchpoint
    lift: float = 1.0  # the candidate arm's click propensity over the others'
    beta: tuple[float, float] = (2.0, 18.0)  # users' click propensities: mean 10%
    prefix: str = "sim"
    seed: int = 0
    candidate: str = "candidate"


def experiments_toml(
    experiments: dict[str, str], weights: tuple[float, float] = (1, 1), min_users_per_arm: int = 0
) -> str:
    """An experiments file: experiment name -> touchpoint, each with arms control and candidate."""
    planned = f"min_users_per_arm = {min_users_per_arm}\n" if min_users_per_arm else ""
    return "".join(
        f'[experiment.{name}]\ntouchpoint = "{touchpoint}"\n{planned}'
        f'[[experiment.{name}.arms]]\nname = "control"\nweight = {weights[0]}\n'
        f'[[experiment.{name}.arms]]\nname = "candidate"\nweight = {weights[1]}\n'
        for name, touchpoint in experiments.items()
    )


def _event(
    item_id: str, event_type: str, answer: recommend_pb2.RecommendResponse, user: str, touchpoint: str
) -> events_pb2.Event:
    stamp = Timestamp()
    stamp.FromNanoseconds(time.time_ns())
    return events_pb2.Event(
        event_id=uuid.uuid4().hex,
        timestamp=stamp,
        user_id=user,
        item_id=item_id,
        event_type=event_type,
        touchpoint=touchpoint,
        recommendation_id=answer.recommendation_id,
    )


def _visit_user(
    recommend: recommend_pb2_grpc.RecommendServiceStub,
    record: events_pb2_grpc.EventServiceStub,
    world: World,
    touchpoints: list[str],
    number: int,
) -> int:
    """One user's visits and the events they report (one RecordEvents call); the answers given."""
    rng = np.random.default_rng([world.seed, number])
    propensity = float(rng.beta(*world.beta))
    user = f"{world.prefix}{number:06d}"
    batch: list[events_pb2.Event] = []
    for touchpoint in touchpoints:
        for _ in range(world.visits):
            answer = recommend.Recommend(
                recommend_pb2.RecommendRequest(user_id=user, touchpoint=touchpoint, limit=5), timeout=30
            )
            shown = [item.item_id for item in answer.items]
            batch += [_event(item, "impression", answer, user, touchpoint) for item in shown]
            lift = world.lift if answer.experiment.arm == world.candidate else 1.0
            if shown and rng.random() < propensity * lift:
                batch.append(_event(shown[0], "click", answer, user, touchpoint))
    for start in range(0, len(batch), 1000):
        record.RecordEvents(events_pb2.RecordEventsRequest(events=batch[start : start + 1000]), timeout=30)
    return len(touchpoints) * world.visits


def simulate(port: int, world: World, touchpoints: list[str], threads: int = 8) -> int:
    """Every user of `world` visiting `touchpoints` through the server on `port`, `threads` users at a
    time over one channel; the number of answers."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        recommend = recommend_pb2_grpc.RecommendServiceStub(channel)
        record = events_pb2_grpc.EventServiceStub(channel)
        with futures.ThreadPoolExecutor(threads) as pool:
            done = pool.map(lambda n: _visit_user(recommend, record, world, touchpoints, n), world.users)
            return sum(done)
