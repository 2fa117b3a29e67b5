"""Random and malformed requests at every RPC of a real server (the benchmark throws 5,000 and more)."""

from __future__ import annotations

from pathlib import Path

import grpc

from benchmarks.fuzz import RPCS, fuzz, still_serving, vocabulary_of
from service.server import RunningServer

CASES = 300


def test_random_requests_never_crash_hang_or_fail_internally(
    server: RunningServer, world: dict[str, Path]
) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        every_rpc = {method.rsplit("/", 1)[1] for method in RPCS}
        seen = fuzz(channel, vocabulary_of(world), CASES)
        if {rpc for rpc, _ in seen} != every_rpc:
            # Chance, not a fault: 1 run of 85 here left one RPC out of its 300 cases. A second round
            # makes a miss rare; a generator that never reaches an RPC still fails below.
            seen += fuzz(channel, vocabulary_of(world), CASES)
        assert sum(seen.values()) >= CASES
        # The generator reaches past validation: some random requests are answered, some refused.
        assert {rpc for rpc, _ in seen} == every_rpc
        codes = {code for _, code in seen}
        assert {"OK", "INVALID_ARGUMENT"} <= codes
        assert still_serving(channel)
