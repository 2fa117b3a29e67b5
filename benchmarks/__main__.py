"""`python -m benchmarks [--data ../shared/data] [--quick | --full]`: every benchmark in turn, each printing
its tables.

By default (several hours) the Homberger and GAP benchmarks run a representative subset of their
instances, Solomon all 29 beside PyVRP and VROOM, and the large ones the sizes in docs/benchmarks.md
(200,000- and 1,000,000-item catalogs; 10M and 50M events). --full adds every Homberger and GAP
instance (hours more). --quick (under an hour) runs every benchmark on its smaller sizes: a first
instance per class, the 200,000-item catalog, 2M events on each engine; for checking a change, not for
docs/benchmarks.md's tables.
Benchmarks on public data are skipped, with a line saying so, when the data is not there.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from benchmarks import (
    audiences,
    catalog,
    console,
    demo_scenes,
    dispatch_city,
    experiments,
    fuzz,
    gap,
    live_store,
    movielens,
    replan,
    route_city,
    service_load,
    solomon,
    training_scale,
)

# Without --full: the first instance of each class, and the ones the issue measured.
HOMBERGER_200 = "c1_2_1,r1_2_1,rc1_2_1,r1_2_5,c1_2_5,r1_2_9,rc1_2_5,rc1_2_9"
HOMBERGER_1000 = "c1_10_1,r1_10_1,rc1_10_1,r1_10_5,rc1_10_5"
GAP_SUBSET = "c0515_1,c0824_1,c1060_1,c05100,d05100,c10200,d10200,c10400,d10400,d801600"


@dataclass(frozen=True)
class Sizes:
    """What each benchmark runs at one level of --quick / default / --full."""

    dispatch_city: str = "1000x300,10000x3000"
    route_city: str = "5000x1000,2000x400"
    solomon: str = ""  # all
    homberger_200: str = HOMBERGER_200
    homberger_1000: str | None = HOMBERGER_1000  # None: skipped
    gap: str = GAP_SUBSET
    catalog_items: tuple[str, ...] = ("200000", "1000000")
    training_events: tuple[str, ...] = ("10000000", "50000000")
    spark_events: str = "10000000"
    service_seconds: str = "60"
    fuzz_cases: str = "5000"
    experiment_events: str = "10000000"
    audience_events: tuple[str, ...] = ("10000000", "50000000")


DEFAULT = Sizes()
FULL = Sizes(homberger_200="", homberger_1000="", gap="")
QUICK = Sizes(
    dispatch_city="1000x300",
    route_city="2000x400",
    solomon="C101,R101,RC101",
    homberger_200="c1_2_1,r1_2_1,rc1_2_1",
    homberger_1000=None,
    gap="c0515_1,c05100,d05100",
    catalog_items=("200000",),
    training_events=("2000000",),
    spark_events="2000000",
    service_seconds="20",
    fuzz_cases="1000",
    experiment_events="1000000",
    audience_events=("2000000",),
)


def _instances(names: str) -> list[str]:
    return ["--instances", names] if names else []


def _have(path: Path) -> bool:
    if path.exists():
        return True
    print(f"skipped: no data at {path}")
    return False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the public data folder")
    level = parser.add_mutually_exclusive_group()
    level.add_argument("--full", action="store_true", help="every Homberger and GAP instance")
    level.add_argument("--quick", action="store_true", help="the smaller sizes of every benchmark")
    args = parser.parse_args(argv)
    sizes = FULL if args.full else QUICK if args.quick else DEFAULT
    print("== dispatch: generated city ==")
    dispatch_city.main(["--sizes", sizes.dispatch_city])
    print("\n== dispatch: city-scale days in ROUTE mode ==")
    route_city.main(["--sizes", sizes.route_city])
    print("\n== dispatch: re-planning a running day, and OfferSlots ==")
    replan.main(["--quick"] if args.quick else [])
    print("\n== dispatch: Solomon VRPTW, ROUTE mode over gRPC, beside PyVRP and VROOM ==")
    if _have(args.data / "solomon"):
        solomon.main(["--data", str(args.data / "solomon"), "--peers", *_instances(sizes.solomon)])
    for size, limit, subset in (("200", "20", sizes.homberger_200), ("1000", "60", sizes.homberger_1000)):
        print(f"\n== dispatch: Homberger {size} customers, beside PyVRP and VROOM ==")
        if subset is None:
            print("skipped with --quick")
        elif _have(args.data / "homberger" / size):
            folder = str(args.data / "homberger" / size)
            solomon.main(["--data", folder, "--time-limit-s", limit, "--peers", *_instances(subset)])
    print("\n== dispatch: generalized assignment (OR-Library) ==")
    if _have(args.data / "gap"):
        gap.main(["--data", str(args.data / "gap"), *_instances(sizes.gap)])
    print("\n== recommendation: MovieLens 100k ==")
    if _have(args.data / "movielens-100k" / "u.data"):
        movielens.main(["--data", str(args.data / "movielens-100k")])
    print("\n== recommendation: scene effect on the demo world ==")
    demo_scenes.main([])
    print("\n== live store: event intake, catalog visibility, cold items ==")
    live_store.main([])
    items = ", ".join(sizes.catalog_items)
    print(f"\n== recommendation: {items}-item catalogs (retrieval, 1 vs 2 processes) ==")
    catalog.main(["--items", *sizes.catalog_items])
    print(f"\n== training: {', '.join(sizes.training_events)} generated events, DuckDB; "
          f"{sizes.spark_events}, Spark ==")  # fmt: skip
    training_scale.main(["--events", *sizes.training_events])
    training_scale.main(["--events", sizes.spark_events, "--engine", "spark"])
    print(f"\n== audiences: tags of {', '.join(sizes.audience_events)} generated events ==")
    audiences.main(["--events", *sizes.audience_events])
    print("\n== service: isolation, steady load, saturation ==")
    service_load.main(["--seconds", sizes.service_seconds])
    print("\n== service: random and malformed requests ==")
    fuzz.main(["--cases", sizes.fuzz_cases])
    print("\n== experiments: overhead, analysis of a generated log, A/A false winners and power ==")
    experiments.main(["--events", sizes.experiment_events, *(["--quick"] if args.quick else [])])
    print("\n== console: p95 per page on the demo world ==")
    console.main(["--quick"] if args.quick else [])


if __name__ == "__main__":
    main()
