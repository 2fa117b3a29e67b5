"""The scene effect on the demo world: per-scene NDCG@10 of the served blend against scene-blind ALS.

    python -m benchmarks.demo_scenes [--seed 7]

Generates the demo world, runs the real training job on it, and reads the holdout metrics it measured
(every model on the same time-based test split, see training/evaluate.py). ALS sees who did what but
not where: it is the scene-blind baseline; the blend adds scene- and touchpoint-aware LightFM and
scene popularity.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks import load
from models import versions
from training import demo


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.demo_scenes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="shifu-demo-") as tmp:
        paths = demo.generate(Path(tmp), seed=args.seed)
        seconds = load.run_training(
            paths["events.csv"], paths["items.csv"], Path(tmp) / "models", paths["users.csv"]
        )
        (name,) = versions.list_versions(Path(tmp) / "models")
        metrics = versions.read_manifest(Path(tmp) / "models" / name)["metrics"]
    blend, als = metrics["blend"], metrics["als"]
    print(f"demo world (seed {args.seed}): training job {seconds:.0f} s; holdout NDCG@10 per scene")
    print(f"{'scene':<18}{'queries':>8}{'blend':>9}{'ALS':>9}{'ratio':>8}")
    for scene, row in blend["per_scene"].items():
        base = als["per_scene"][scene]["ndcg"]
        ratio = row["ndcg"] / base if base else float("inf")
        print(f"{scene:<18}{row['queries']:>8}{row['ndcg']:>9.4f}{base:>9.4f}{ratio:>8.2f}")
    o, a = blend["overall"], als["overall"]
    print(f"{'overall':<18}{o['queries']:>8}{o['ndcg']:>9.4f}{a['ndcg']:>9.4f}{o['ndcg'] / a['ndcg']:>8.2f}")
    return {"per_scene": {s: (r["ndcg"], als["per_scene"][s]["ndcg"]) for s, r in blend["per_scene"].items()}}


if __name__ == "__main__":
    main()
