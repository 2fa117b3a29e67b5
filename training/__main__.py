"""Offline jobs: `python -m training COMMAND ...`, the commands below (demo, train, experiments, ...)."""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
from pathlib import Path
from typing import TypeAlias

import pandas as pd

from models import experiments as experiment_file
from models import flags
from models.audiences.audience_set import REPORT_FILE
from models.experiment_stats import AnalysisConfig
from models.recommend.component import ArtifactError
from models.recommend.components import COMPONENTS
from models.versions import VersionError
from training import (
    audiences,
    demo,
    engines,
    experiments,
    export_catalog,
    supply_demand,
    tiers,
    version_admin,
)
from training.components import ModelConfig
from training.experiment_log import Period
from training.readers import DEFAULT_EVENT_WEIGHTS, DataError, parse_timestamps, read_items, read_jobs
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
    config = TierConfig(**flags.values(TierConfig, args))
    table, thresholds = tiers.compute(_read_jobs(args.jobs), config)
    period = tiers.latest_complete_period(table)
    if not period:
        print("error: the job log covers no whole period, so no tiers can be set", file=sys.stderr)
        return 2
    version = tiers.publish(table, thresholds, config, args.jobs, args.out)
    latest = table[table["period"] == period]
    partial = sorted(set(table.loc[~table["complete"], "period"]))
    print(
        f"period {period}: thresholds {thresholds[period]}"
        + (f" (partial, not used: {', '.join(partial)})" if partial else "")
    )
    print(latest.groupby(["segment", "tier"]).size().rename("technicians").to_string())
    print(f"published {version} (report: {version / 'report.html'})")
    return 0


def _versions(args: argparse.Namespace) -> int:
    if args.action == "promote":
        if not args.version:
            raise ValueError("promote needs the version to serve (see `versions list`)")
        demoted = version_admin.promote(args.dir, args.version)
        print(f"{args.version} serves" + (f"; rolled back from {', '.join(demoted)}" if demoted else ""))
    elif args.action == "prune":
        doomed = version_admin.prune(args.dir, args.dry_run)
        verb = "would delete" if args.dry_run else "deleted"
        print(f"{verb} {len(doomed)} version(s)" + "".join(f"\n  {name}" for name in doomed))
    else:
        print(version_admin.table(args.dir))
    return 0


def _supply_demand(args: argparse.Namespace) -> int:
    config = SupplyDemandConfig(**flags.values(SupplyDemandConfig, args))
    table = supply_demand.daily_table(_read_jobs(args.jobs), config)
    version = supply_demand.publish(table, config, args.jobs, args.out)
    flagged = table[table["orders_at_risk"] | table["technicians_at_risk"]]
    print(f"{len(table)} cell-days; flagged:")
    columns = ["date", "city", "category", "due", "completed", "never_taken", "capacity"]
    print(flagged[[*columns, "orders_at_risk", "technicians_at_risk"]].to_string(index=False))
    print(f"published {version} (report: {version / 'report.html'})")
    return 0


def _demo(args: argparse.Namespace) -> int:
    paths = demo.generate(args.out, args.seed, demo.DemoSize(users=args.users, items=args.items))
    for path in paths.values():
        print(path)
    return 0


def _export_catalog(args: argparse.Namespace) -> int:
    state = args.state_dir or args.model_dir.parent / "state"
    count = export_catalog.export(export_catalog.live_catalog(args.model_dir, state), args.out)
    print(f"wrote {count} items to {args.out}")
    return 0


def _train(args: argparse.Namespace) -> int:
    params = {c.name: c.Params(**flags.values(c.Params, args, prefix=c.name)) for c in COMPONENTS}
    model = ModelConfig(
        params=params, **flags.values(ModelConfig, args), event_weights=_weights(args.event_weight)
    )
    config = TrainConfig(model=model, **flags.values(TrainConfig, args))
    result = train(args.events, args.items, args.users, args.out, config)
    for report in result.reports:
        print(report.summary())
    print(metrics_table(result.metrics, config.k))
    print(f"published {result.version_dir} ({'promoted' if result.promoted else 'NOT promoted'})")
    return 0


def _instant(text: str | None, flag: str) -> float | None:
    if text is None:
        return None
    seconds = float(parse_timestamps(pd.Series([text])).iloc[0])
    if pd.isna(seconds):
        raise ValueError(f"{flag}: not a time (ISO 8601 or Unix seconds): {text!r}")
    return seconds


def _experiments(args: argparse.Namespace) -> int:
    config = AnalysisConfig(**flags.values(AnalysisConfig, args))
    period = Period(_instant(args.since, "--since"), _instant(args.until, "--until"))
    items = read_items(args.items)[0] if args.items else None
    engine = engines.DuckDB(args.engine_memory_gb)
    try:
        result = experiments.analyse(
            args.events, experiment_file.load(args.experiments), items, period, config, engine
        )
    finally:
        engine.close()
    for experiment in result["experiments"]:
        decision = experiment["decision"]
        print(f"{experiment['name']}: {decision['status']} {decision['winner'] or ''} ({decision['reason']})")
    json_path, html_path = experiments.write(result, args.out)
    print(f"wrote {json_path} and {html_path}")
    return 0


def _audiences(args: argparse.Namespace) -> int:
    config = audiences.AudienceConfig(
        as_of=_instant(args.as_of, "--as-of"),
        suggestions=args.suggestions,
        recommender_limit=args.recommender_limit,
        memory_gb=args.engine_memory_gb,
    )
    result = audiences.run(args.events, args.items, args.out, args.tags, args.model_dir, config)
    print(result.report.summary())
    print(result.tags.groupby("tag")["user_id"].nunique().rename("users").to_string())
    print(f"published {result.version_dir} (report: {result.version_dir / REPORT_FILE})")
    return 0


# What add_subparsers returns (argparse names no public type for it).
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _add_demo(commands: Commands) -> None:
    d = commands.add_parser("demo", help="generate the demo world (events, catalog, users, a dispatch day)")
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--users", type=int, default=demo.DemoSize.users)
    d.add_argument("--items", type=int, default=demo.DemoSize.items)


def _add_train(commands: Commands) -> None:
    t = commands.add_parser("train", help="train, evaluate and publish a new recommender version")
    t.add_argument(
        "--events", type=Path, required=True, help="a file, a folder of partitions (the service's) or a glob"
    )
    t.add_argument("--items", type=Path, required=True)
    t.add_argument("--users", type=Path)
    t.add_argument(
        "--out", type=Path, required=True, help="model directory; the version goes in a subdirectory"
    )
    for component in COMPONENTS:
        flags.add_flags(t, component.Params, prefix=component.name)
    flags.add_flags(t, ModelConfig, skip={"event_weights", "params"})
    flags.add_flags(t, TrainConfig, skip={"model"})
    t.add_argument(
        "--event-weight",
        action="append",
        default=[],
        metavar="TYPE=WEIGHT",
        help="weight of an event type (repeatable; adds custom types)",
    )


def _add_versions(commands: Commands) -> None:
    v = commands.add_parser("versions", help="list model versions, roll back to one, delete old ones")
    v.add_argument("action", choices=["list", "promote", "prune"])
    v.add_argument("version", nargs="?", help="the version to promote (serve), for `promote`")
    v.add_argument("--dir", type=Path, required=True, help="the model directory")
    v.add_argument("--dry-run", action="store_true", help="prune: say what would be deleted")


def _add_job_report(commands: Commands, name: str, about: str, out: str, config: type) -> None:
    """A command that reads the job log and publishes a version of what it computes (tiers, supply-demand)."""
    r = commands.add_parser(name, help=about)
    r.add_argument("--jobs", type=Path, required=True)
    r.add_argument(
        "--out", type=Path, required=True, help=f"{out} directory; the version goes in a subdirectory"
    )
    flags.add_flags(r, config)


def _add_export_catalog(commands: Commands) -> None:
    x = commands.add_parser(
        "export-catalog", help="the live catalog (items with the storefront's changes) as a catalog file"
    )
    x.add_argument("--out", type=Path, required=True, help="catalog file to write (CSV)")
    x.add_argument("--model-dir", type=Path, default=Path(".shifu/models"))
    x.add_argument(
        "--state-dir", type=Path, help="the service's --state-dir (default: state beside --model-dir)"
    )


def _add_experiments(commands: Commands) -> None:
    e = commands.add_parser(
        "experiments", help="experiments per touchpoint compared per user, and the touchpoint funnels"
    )
    e.add_argument("--events", type=Path, required=True, help="the event log folder (with its exposures)")
    e.add_argument("--experiments", type=Path, required=True, help="the experiments file (TOML)")
    e.add_argument("--out", type=Path, required=True, help="where experiments.json and .html go")
    e.add_argument("--items", type=Path, help="the item catalog, for the review by category")
    e.add_argument("--since", help="first instant analysed (ISO 8601 or Unix seconds)")
    e.add_argument("--until", help="end of the period analysed (exclusive)")
    e.add_argument("--engine-memory-gb", type=float, default=4.0)
    flags.add_flags(e, AnalysisConfig)


def _add_audiences(commands: Commands) -> None:
    a = commands.add_parser("audiences", help="tags of every user from the event log, with suggested items")
    a.add_argument("--events", type=Path, required=True, help="a file, a folder of partitions or a glob")
    a.add_argument("--items", type=Path, required=True)
    a.add_argument("--tags", type=Path, help="the tag rules (TOML); the default file shipped with Shifu")
    a.add_argument("--as-of", help="tag as of this instant (ISO 8601 or Unix seconds); the newest event")
    a.add_argument("--out", type=Path, required=True, help="audience directory; the version goes inside")
    a.add_argument("--model-dir", type=Path, help="suggest with this model directory's serving version")
    a.add_argument("--suggestions", type=int, default=audiences.AudienceConfig.suggestions)
    a.add_argument(
        "--recommender-limit",
        type=int,
        default=audiences.AudienceConfig.recommender_limit,
        help="rows per tag the recommender answers; the rest get the category's popular items",
    )
    a.add_argument("--engine-memory-gb", type=float, default=audiences.AudienceConfig.memory_gb)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    _add_demo(commands)
    _add_train(commands)
    _add_versions(commands)
    _add_job_report(
        commands, "tiers", "technician metrics, segments and tiers from the job log", "tier", TierConfig
    )
    _add_job_report(
        commands,
        "supply-demand",
        "daily supply and demand per city and category, flagged",
        "report",
        SupplyDemandConfig,
    )
    _add_export_catalog(commands)
    _add_experiments(commands)
    _add_audiences(commands)
    return parser


# The commands that report bad input as `error: ...` and exit code 2 (demo's input is its own flags).
RUNS = {
    "versions": _versions,
    "tiers": _tiers,
    "supply-demand": _supply_demand,
    "export-catalog": _export_catalog,
    "train": _train,
    "experiments": _experiments,
    "audiences": _audiences,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    if args.command == "demo":
        return _demo(args)
    try:
        return RUNS[args.command](args)
    except (
        DataError,
        ValueError,
        VersionError,
        ArtifactError,
        sqlite3.Error,
        argparse.ArgumentTypeError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
