"""Load generation against a running server: latency percentiles and throughput at a given concurrency,
and the processes to measure (the real training job, the real service, an empty-handler server).

The client keeps `concurrency` calls in flight from one thread with grpc futures, which costs far less
client CPU than one thread per call, and times each call from send to completion.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.pb.shifu.v1 import recommend_pb2, recommend_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class LoadResult:
    concurrency: int
    calls: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def throughput(self) -> float:
        return self.calls / self.seconds

    def row(self, name: str) -> str:
        return (
            f"{name:<34}{self.concurrency:>5}{self.calls:>8}{self.p50_ms:>9.2f}{self.p99_ms:>9.2f}"
            f"{self.throughput:>10.0f}{self.errors:>7}"
        )


HEADER = f"{'server':<34}{'conc':>5}{'calls':>8}{'p50 ms':>9}{'p99 ms':>9}{'calls/s':>10}{'errors':>7}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_serving(port: int, service: str = "", timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise TimeoutError(f"server on port {port} not SERVING after {timeout_s} s")


@contextmanager
def service_process(
    model_dir: Path, workers: int, extra: tuple[str, ...] = (), wait_for: str = ""
) -> Iterator[int]:
    """`python -m service` on a free port; yields the port once `wait_for` (health's service name; ""
    for the whole server, so a model is loaded) is SERVING."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "service",
        "--model-dir",
        str(model_dir),
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "WARNING",
        "--metrics-port",
        "0",
        *extra,
    ]
    with _process(command):
        wait_serving(port, wait_for)
        yield port


@contextmanager
def empty_server_process(workers: int) -> Iterator[int]:
    """A RecommendService whose handler returns an empty answer: the transport's own limit."""
    port = free_port()
    command = [sys.executable, "-m", "benchmarks.load", "--empty-server", str(port), str(workers)]
    with _process(command):
        wait_serving(port)
        yield port


@contextmanager
def _process(command: list[str]) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def process_rss_bytes(pid: int) -> list[int]:
    """Resident memory of a process and of each of its descendants (a server's workers), one by one."""
    sizes, stack = [], [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            sizes.append(
                next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:"))
            )
            for task in Path(f"/proc/{current}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return sizes


def pid_on_port(port: int) -> int:
    """The `python -m service` process started with --port `port`."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if (
                b"service" in argv
                and b"--port" in argv
                and argv[argv.index(b"--port") + 1] == str(port).encode()
            ):
                return int(entry.name)
    raise LookupError(f"no service process on port {port}")


def run_load(
    port: int, requests: list[recommend_pb2.RecommendRequest], concurrency: int, calls: int
) -> LoadResult:
    """`_load` in a fresh process: the measuring client carries none of the benchmark's data or
    thread pools, whose garbage collection and spinning threads would show in the latencies."""
    context = multiprocessing.get_context("spawn")
    payloads = [r.SerializeToString() for r in requests]
    with futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(_load_serialised, port, payloads, concurrency, calls).result()


def _load_serialised(port: int, payloads: list[bytes], concurrency: int, calls: int) -> LoadResult:
    return _load(port, [recommend_pb2.RecommendRequest.FromString(p) for p in payloads], concurrency, calls)


def _load(
    port: int,
    requests: list[recommend_pb2.RecommendRequest],
    concurrency: int,
    calls: int,
    warmup: int = 200,
    connections: int = 0,
) -> LoadResult:
    """`calls` Recommend calls cycling through `requests`, `concurrency` in flight at a time, spread over
    `connections` channels (0: one per call in flight), as a storefront's many instances would be:
    SO_REUSEPORT spreads connections, not calls, over the server's processes, and a handful of
    connections can all land on one of them."""
    connections = connections or concurrency

    # Distinct channel arguments keep gRPC from sharing one subchannel among the channels.
    channels = [
        grpc.insecure_channel(f"127.0.0.1:{port}", options=[("shifu.bench.channel", n)])
        for n in range(connections)
    ]
    try:
        stubs = [recommend_pb2_grpc.RecommendServiceStub(channel) for channel in channels]
        for i in range(warmup):
            stubs[i % connections].Recommend(requests[i % len(requests)], timeout=30)
        latencies = np.zeros(calls)
        errors = 0
        lock = threading.Lock()
        done = threading.Semaphore(concurrency)
        finished = threading.Event()
        remaining = [calls]

        def on_done(index: int, started: float) -> Callable[[grpc.Future], None]:
            def callback(future: grpc.Future) -> None:
                nonlocal errors
                latencies[index] = time.perf_counter() - started
                with lock:
                    if future.exception() is not None:
                        errors += 1
                    remaining[0] -= 1
                    if remaining[0] == 0:
                        finished.set()
                done.release()

            return callback

        gc.disable()  # a collection would stall the client, not the server
        began = time.perf_counter()
        for i in range(calls):
            done.acquire()
            callback = on_done(i, time.perf_counter())
            stubs[i % connections].Recommend.future(
                requests[i % len(requests)], timeout=30
            ).add_done_callback(callback)
        finished.wait()
        seconds = time.perf_counter() - began
    finally:
        gc.enable()

        for channel in channels:
            channel.close()

    ms = latencies * 1000
    return LoadResult(
        concurrency, calls, seconds, float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), errors
    )


class _EmptyRecommend(recommend_pb2_grpc.RecommendServiceServicer):
    def Recommend(self, request, context):
        return recommend_pb2.RecommendResponse()


def _serve_empty(port: int) -> None:
    from grpc_health.v1 import health

    server = grpc.server(futures.ThreadPoolExecutor(16), options=[("grpc.so_reuseport", 1)])
    recommend_pb2_grpc.add_RecommendServiceServicer_to_server(_EmptyRecommend(), server)
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop(1).wait()


def _empty_main(port: int, workers: int) -> None:
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_serve_empty, args=(port,)) for _ in range(workers)]
    for child in children:
        child.start()

    def stop(*_: object) -> None:
        for child in children:
            child.terminate()

    signal.signal(signal.SIGTERM, stop)
    for child in children:
        child.join()


if __name__ == "__main__" and sys.argv[1:2] == ["--empty-server"]:
    _empty_main(int(sys.argv[2]), int(sys.argv[3]))


def run_training(
    events: Path, items: Path, out: Path, users: Path | None = None, extra: tuple[str, ...] = ()
) -> float:
    """The real training job (`python -m training train`) on these files; its wall time in seconds."""
    command = [
        sys.executable,
        "-m",
        "training",
        "train",
        "--events",
        str(events),
        "--items",
        str(items),
        "--out",
        str(out),
        *(["--users", str(users)] if users else []),
        *extra,
    ]
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started
