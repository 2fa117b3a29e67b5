"""`python -m benchmarks [--data ../shared/data] [--full]`: every benchmark in turn, each printing its tables.

Without --full the Homberger and GAP benchmarks run a representative subset of their instances (all of
them take hours more); Solomon always runs all 29 beside PyVRP and VROOM (about 11 minutes).
Benchmarks on public data are skipped, with a line saying so, when the data is not there.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks import (
    catalog,
    demo_scenes,
    dispatch_city,
    fuzz,
    gap,
    live_store,
    movielens,
    route_city,
    service_load,
    solomon,
    training_scale,
)

# Without --full: the first instance of each class, and the ones the issue measured.
HOMBERGER_200 = "c1_2_1,r1_2_1,rc1_2_1,r1_2_5,c1_2_5,r1_2_9,rc1_2_5,rc1_2_9"
HOMBERGER_1000 = "c1_10_1,r1_10_1,rc1_10_1,r1_10_5,rc1_10_5"
GAP_SUBSET = "c0515_1,c0824_1,c1060_1,c05100,d05100,c10200,d10200,c10400,d10400,d801600"


def _have(path: Path) -> bool:
    if path.exists():
        return True
    print(f"skipped: no data at {path}")
    return False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the public data folder")
    parser.add_argument("--full", action="store_true", help="every Homberger and GAP instance")
    args = parser.parse_args(argv)
    print("== dispatch: generated city ==")
    dispatch_city.main([])
    print("\n== dispatch: a 5,000-job city day in ROUTE mode ==")
    route_city.main([])
    print("\n== dispatch: Solomon VRPTW, ROUTE mode over gRPC, beside PyVRP and VROOM ==")
    if _have(args.data / "solomon"):
        solomon.main(["--data", str(args.data / "solomon"), "--peers"])
    for size, limit, subset in (("200", "20", HOMBERGER_200), ("1000", "60", HOMBERGER_1000)):
        print(f"\n== dispatch: Homberger {size} customers, beside PyVRP and VROOM ==")
        if _have(args.data / "homberger" / size):
            chosen = [] if args.full else ["--instances", subset]
            solomon.main(
                ["--data", str(args.data / "homberger" / size), "--time-limit-s", limit, "--peers", *chosen]
            )
    print("\n== dispatch: generalized assignment (OR-Library) ==")
    if _have(args.data / "gap"):
        gap.main(["--data", str(args.data / "gap")] + ([] if args.full else ["--instances", GAP_SUBSET]))
    print("\n== recommendation: MovieLens 100k ==")
    if _have(args.data / "movielens-100k" / "u.data"):
        movielens.main(["--data", str(args.data / "movielens-100k")])
    print("\n== recommendation: scene effect on the demo world ==")
    demo_scenes.main([])
    print("\n== live store: event intake, catalog visibility, cold items ==")
    live_store.main([])
    print("\n== recommendation: 200,000- and 1,000,000-item catalogs (retrieval, 1 vs 2 processes) ==")
    catalog.main([])
    print("\n== training: 10M and 50M generated events, DuckDB (and Spark at 1M) ==")
    training_scale.main(["--events", "10000000", "50000000"])
    training_scale.main(["--events", "1000000", "--engine", "spark"])
    print("\n== service: isolation, steady load, saturation ==")
    service_load.main([])
    print("\n== service: random and malformed requests ==")
    fuzz.main(["--cases", "5000"])


if __name__ == "__main__":
    main()
