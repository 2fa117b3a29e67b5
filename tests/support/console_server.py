"""A server with its console on the console world (tests/support/console_world.py): an event log with
an experiment's exposures, an audience set, tiers and a supply-demand report from the world's job log,
and a dispatch day answered, then re-planned with lunch breaks; shared by the console's tests and its
benchmark."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pandas as pd

from service.client_input import read_request
from service.pb.shifu.v1 import dispatch_pb2, dispatch_pb2_grpc
from service.server import RunningServer
from tests.support import console_world, free_port, start_server
from training import supply_demand, tiers
from training.readers import read_jobs

PAGES = (
    "/",
    "/experiments",
    "/touchpoints",
    "/funnels",
    "/audiences",
    "/tiers",
    "/supply-demand",
    "/dispatch",
)


def publish_reports(job_log: Path, root: Path) -> Path:
    """Tiers and supply-demand versions under root/tiers and root/supply-demand; returns root/tiers."""
    jobs, _ = read_jobs(job_log)
    table, thresholds = tiers.compute(jobs, tiers.TierConfig())
    tiers.publish(table, thresholds, tiers.TierConfig(), job_log, root / "tiers")
    config = supply_demand.SupplyDemandConfig()
    supply_demand.publish(supply_demand.daily_table(jobs, config), config, job_log, root / "supply-demand")
    return root / "tiers"


def replanned(
    day: dispatch_pb2.AssignJobsRequest, plan: dispatch_pb2.AssignJobsResponse
) -> dispatch_pb2.AssignJobsRequest:
    """The day again, as a dispatcher re-plans it at lunch time: every technician with 30 minutes of lunch
    starting between 12:00 and 13:30 (the windows open at 8:00 at the earliest), and each job with the
    technician the first plan gave it."""
    again = dispatch_pb2.AssignJobsRequest()
    again.CopyFrom(day)
    midnight = min(j.time_window.start.seconds for j in day.jobs) - 8 * 3600
    holder = {a.job_id: a.technician_id for a in plan.assignments}
    for tech in again.technicians:
        lunch = tech.breaks.add(duration_minutes=30)
        lunch.window.start.seconds, lunch.window.end.seconds = (
            midnight + 12 * 3600,
            midnight + 13 * 3600 + 1800,
        )
    for job in again.jobs:
        if job.job_id in holder:
            job.current_technician_id = holder[job.job_id]
    return again


@contextlib.contextmanager
def console_server(model_dir: Path, world: dict[str, Path], **overrides: Any) -> Iterator[RunningServer]:
    root = Path(tempfile.mkdtemp(prefix="shifu-console-"))
    # A few items, each shown often enough to be ranked on /touchpoints.
    items = pd.read_csv(world["items.csv"])["item_id"].astype(str).tolist()[:100]
    console_world.write_log(root / "events", items)
    console_world.write_audiences(root / "audiences", items)
    (root / "experiments.toml").write_text(console_world.EXPERIMENTS_TOML)
    running = start_server(
        model_dir,
        publish_reports(world["job_log.csv"], root),
        **{
            "console_port": free_port(),
            "events_dir": root / "events",
            "experiments": str(root / "experiments.toml"),
            "audiences": str(root / "audiences"),
            **overrides,
        },
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            day = read_request(world["dispatch_day.json"], dispatch_pb2.AssignJobsRequest)
            dispatch = dispatch_pb2_grpc.DispatchServiceStub(channel)
            dispatch.AssignJobs(replanned(day, dispatch.AssignJobs(day, timeout=120)), timeout=120)
        yield running
    finally:
        running.shutdown()
