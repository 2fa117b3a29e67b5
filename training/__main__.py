"""Offline jobs: `python -m training demo|train ...`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from training import demo
from training.readers import DEFAULT_EVENT_WEIGHTS, DataError
from training.train import TrainConfig, train


def _weights(pairs: list[str]) -> dict[str, float]:
    weights = dict(DEFAULT_EVENT_WEIGHTS)
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            weights[name.strip().lower()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise argparse.ArgumentTypeError(f"--event-weight takes TYPE=WEIGHT, got {pair!r}")
    return weights


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    d = commands.add_parser("demo", help="generate the demo world (events, catalog, users, a dispatch day)")
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--users", type=int, default=demo.DemoSize.users)
    d.add_argument("--items", type=int, default=demo.DemoSize.items)

    t = commands.add_parser("train", help="train the recommender and publish a new model version")
    t.add_argument("--events", type=Path, required=True)
    t.add_argument("--items", type=Path, required=True)
    t.add_argument("--users", type=Path)
    t.add_argument(
        "--out", type=Path, required=True, help="model directory; the version goes in a subdirectory"
    )
    t.add_argument("--factors", type=int, default=TrainConfig.factors)
    t.add_argument("--iterations", type=int, default=TrainConfig.iterations)
    t.add_argument("--regularization", type=float, default=TrainConfig.regularization)
    t.add_argument("--alpha", type=float, default=TrainConfig.alpha)
    t.add_argument("--seed", type=int, default=TrainConfig.seed)
    t.add_argument("--half-life-days", type=float, default=None, help="time decay of event weights")
    t.add_argument(
        "--event-weight",
        action="append",
        default=[],
        metavar="TYPE=WEIGHT",
        help="weight of an event type (repeatable; adds custom types)",
    )

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    if args.command == "demo":
        paths = demo.generate(args.out, args.seed, demo.DemoSize(users=args.users, items=args.items))
        for path in paths.values():
            print(path)
        return 0
    try:
        config = TrainConfig(
            factors=args.factors,
            iterations=args.iterations,
            regularization=args.regularization,
            alpha=args.alpha,
            seed=args.seed,
            half_life_days=args.half_life_days,
            event_weights=_weights(args.event_weight),
        )
        result = train(args.events, args.items, args.users, args.out, config)
    except (DataError, ValueError, argparse.ArgumentTypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for report in result.reports:
        print(report.summary())
    print(f"published {result.version_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
