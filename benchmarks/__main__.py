"""`python -m benchmarks [--data ../shared/data]`: every benchmark, in turn, each printing its tables.

Benchmarks on public data are skipped, with a line saying so, when the data is not there.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks import catalog, demo_scenes, dispatch_city, movielens


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the public data folder")
    args = parser.parse_args(argv)
    print("== dispatch: generated city ==")
    dispatch_city.main([])
    print("\n== recommendation: MovieLens 100k ==")
    if (args.data / "movielens-100k" / "u.data").is_file():
        movielens.main(["--data", str(args.data / "movielens-100k")])
    else:
        print(f"skipped: no MovieLens data in {args.data / 'movielens-100k'}")
    print("\n== recommendation: scene effect on the demo world ==")
    demo_scenes.main([])
    print("\n== recommendation: 200,000-item catalog ==")
    catalog.main([])


if __name__ == "__main__":
    main()
