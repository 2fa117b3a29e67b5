"""A server with its console on the console world (tests/support/console_world.py): an event log with
an experiment's exposures, an audience set, tiers and a supply-demand report from the world's job log,
and one dispatch plan answered; shared by the console's tests and its benchmark."""

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
            dispatch_pb2_grpc.DispatchServiceStub(channel).AssignJobs(day, timeout=120)
        yield running
    finally:
        running.shutdown()
