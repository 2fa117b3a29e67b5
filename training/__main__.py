"""Offline jobs: `python -m training demo|train|tiers|supply-demand ...`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

from training import demo, supply_demand, tiers
from training.components import ModelConfig
from training.readers import DEFAULT_EVENT_WEIGHTS, DataError, read_jobs
from training.supply_demand import SupplyDemandConfig
from training.tiers import TierConfig
from training.train import TrainConfig, metrics_table, train


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


def _read_jobs(path: Path) -> pd.DataFrame:
    jobs, report = read_jobs(path)
    print(report.summary())
    if jobs.empty:
        raise ValueError(f"{path}: no jobs left to analyse")
    return jobs


def _tiers(args: argparse.Namespace) -> int:
    config = TierConfig(
        period=args.period,
        threshold_method=args.threshold_method,
        threshold_quantile=args.threshold_quantile,
        attendance_threshold=args.attendance_threshold,
        efficiency_threshold=args.efficiency_threshold,
        utc_offset_hours=args.utc_offset_hours,
    )
    table, thresholds = tiers.compute(_read_jobs(args.jobs), config)
    version = tiers.publish(table, thresholds, config, args.jobs, args.out)
    latest = table[table["period"] == table["period"].max()]
    print(f"period {latest['period'].iat[0]}: thresholds {thresholds[latest['period'].iat[0]]}")
    print(latest.groupby(["segment", "tier"]).size().rename("technicians").to_string())
    print(f"published {version} (report: {version / 'report.html'})")
    return 0


def _supply_demand(args: argparse.Namespace) -> int:
    config = SupplyDemandConfig(
        window_days=args.window_days, alpha=args.alpha, utc_offset_hours=args.utc_offset_hours
    )
    table = supply_demand.daily_table(_read_jobs(args.jobs), config)
    version = supply_demand.publish(table, config, args.jobs, args.out)
    flagged = table[table["orders_at_risk"] | table["technicians_at_risk"]]
    print(f"{len(table)} cell-days; flagged:")
    columns = ["date", "city", "category", "due", "completed", "never_taken", "capacity"]
    print(flagged[[*columns, "orders_at_risk", "technicians_at_risk"]].to_string(index=False))
    print(f"published {version} (report: {version / 'report.html'})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    d = commands.add_parser("demo", help="generate the demo world (events, catalog, users, a dispatch day)")
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--users", type=int, default=demo.DemoSize.users)
    d.add_argument("--items", type=int, default=demo.DemoSize.items)

    t = commands.add_parser("train", help="train, evaluate and publish a new recommender version")
    t.add_argument("--events", type=Path, required=True)
    t.add_argument("--items", type=Path, required=True)
    t.add_argument("--users", type=Path)
    t.add_argument(
        "--out", type=Path, required=True, help="model directory; the version goes in a subdirectory"
    )
    m = ModelConfig
    t.add_argument("--factors", type=int, default=m.als_factors, help="ALS factors")
    t.add_argument("--iterations", type=int, default=m.als_iterations, help="ALS iterations")
    t.add_argument("--regularization", type=float, default=m.als_regularization, help="ALS L2 regularization")
    t.add_argument("--alpha", type=float, default=m.als_alpha, help="ALS confidence scale")
    t.add_argument("--lightfm-components", type=int, default=m.lightfm_components)
    t.add_argument("--lightfm-epochs", type=int, default=m.lightfm_epochs)
    t.add_argument("--ease-max-items", type=int, default=m.ease_max_items, help="larger catalogs skip EASE")
    t.add_argument("--seed", type=int, default=m.seed)
    t.add_argument("--threads", type=int, default=m.threads, help="ALS threads")
    t.add_argument(
        "--lightfm-threads",
        type=int,
        default=m.lightfm_threads,
        help="faster with more, but then not reproducible run to run",
    )
    t.add_argument("--half-life-days", type=float, default=None, help="time decay of event weights")
    t.add_argument(
        "--event-weight",
        action="append",
        default=[],
        metavar="TYPE=WEIGHT",
        help="weight of an event type (repeatable; adds custom types)",
    )
    t.add_argument("--holdout-fraction", type=float, default=TrainConfig.holdout_fraction)
    t.add_argument(
        "--force-promote", action="store_true", help="promote even if worse than the current version"
    )

    r = commands.add_parser("tiers", help="technician metrics, segments and tiers from the job log")
    r.add_argument("--jobs", type=Path, required=True)
    r.add_argument(
        "--out", type=Path, required=True, help="tier directory; the version goes in a subdirectory"
    )
    r.add_argument("--period", choices=["month", "28d"], default=TierConfig.period)
    r.add_argument("--threshold-method", choices=["otsu", "quantile"], default=TierConfig.threshold_method)
    r.add_argument("--threshold-quantile", type=float, default=TierConfig.threshold_quantile)
    r.add_argument("--attendance-threshold", type=float, help="fixed cut in attendance days")
    r.add_argument("--efficiency-threshold", type=float, help="fixed cut in verified jobs per attendance day")
    r.add_argument("--utc-offset-hours", type=float, default=TierConfig.utc_offset_hours)

    s = commands.add_parser("supply-demand", help="daily supply and demand per city and category, flagged")
    s.add_argument("--jobs", type=Path, required=True)
    s.add_argument(
        "--out", type=Path, required=True, help="report directory; the version goes in a subdirectory"
    )
    s.add_argument("--window-days", type=int, default=SupplyDemandConfig.window_days)
    s.add_argument("--alpha", type=float, default=SupplyDemandConfig.alpha)
    s.add_argument("--utc-offset-hours", type=float, default=SupplyDemandConfig.utc_offset_hours)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    if args.command == "demo":
        paths = demo.generate(args.out, args.seed, demo.DemoSize(users=args.users, items=args.items))
        for path in paths.values():
            print(path)
        return 0
    try:
        if args.command == "tiers":
            return _tiers(args)
        if args.command == "supply-demand":
            return _supply_demand(args)
        model = ModelConfig(
            als_factors=args.factors,
            als_iterations=args.iterations,
            als_regularization=args.regularization,
            als_alpha=args.alpha,
            lightfm_components=args.lightfm_components,
            lightfm_epochs=args.lightfm_epochs,
            ease_max_items=args.ease_max_items,
            seed=args.seed,
            threads=args.threads,
            lightfm_threads=args.lightfm_threads,
            half_life_days=args.half_life_days,
            event_weights=_weights(args.event_weight),
        )
        config = TrainConfig(
            model=model, holdout_fraction=args.holdout_fraction, force_promote=args.force_promote
        )
        result = train(args.events, args.items, args.users, args.out, config)
    except (DataError, ValueError, argparse.ArgumentTypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for report in result.reports:
        print(report.summary())
    print(metrics_table(result.metrics, config.k))
    print(f"published {result.version_dir} ({'promoted' if result.promoted else 'NOT promoted'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
