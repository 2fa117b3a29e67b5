"""A small command-line client for trying a running service.

python -m service.client recommend --user u00042 --scene new_home --limit 5
python -m service.client similar --item i00012 [--complements]   (same kind, or what goes with it)
python -m service.client describe                           (the model: its scenes, touchpoints, metrics)
python -m service.client assign --request .shifu/demo/dispatch_day.json [--summary]
python -m service.client rank --request .shifu/demo/rank_request.json   (a RankTechniciansRequest in JSON)
python -m service.client health

With TLS: --ca ca.pem (and --cert/--key for mutual TLS); with tokens: --token or SHIFU_TOKEN.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar, cast

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.pb.shifu.v1 import dispatch_pb2, dispatch_pb2_grpc, recommend_pb2, recommend_pb2_grpc


def _filter(args: argparse.Namespace) -> recommend_pb2.ItemFilter:
    item_filter = recommend_pb2.ItemFilter(
        include_categories=args.category,
        exclude_categories=args.exclude_category,
        stock=recommend_pb2.STOCK_FILTER_ANY if args.any_stock else recommend_pb2.STOCK_FILTER_UNSPECIFIED,
    )
    if args.min_price is not None:
        item_filter.min_price = args.min_price
    if args.max_price is not None:
        item_filter.max_price = args.max_price
    return item_filter


M = TypeVar("M", bound=Message)


def _request_file(path: Path, message_type: type[M]) -> M:
    return json_format.Parse(path.read_text(), message_type())


def _context(pairs: list[str]) -> dict[str, str]:
    context = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--context {pair!r}: expected KEY=VALUE, e.g. --context city=shanghai")
        context[key] = value
    return context


def open_channel(args: argparse.Namespace) -> grpc.Channel:
    """Plaintext, or TLS when --ca is given (mutual TLS with --cert and --key)."""
    if not args.ca:
        return grpc.insecure_channel(args.target)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=Path(args.ca).read_bytes(),
        private_key=Path(args.key).read_bytes() if args.key else None,
        certificate_chain=Path(args.cert).read_bytes() if args.cert else None,
    )
    return grpc.secure_channel(args.target, credentials)


def call(args: argparse.Namespace, channel: grpc.Channel) -> Message:
    metadata = (("authorization", f"Bearer {args.token}"),) if args.token else ()
    recommend = recommend_pb2_grpc.RecommendServiceStub(channel)
    dispatch = dispatch_pb2_grpc.DispatchServiceStub(channel)
    if args.command == "recommend":
        query = recommend_pb2.RecommendRequest(
            user_id=args.user,
            scene=args.scene,
            touchpoint=args.touchpoint,
            limit=args.limit,
            recent_item_ids=args.recent,
            exclude_item_ids=args.exclude,
            context=_context(args.context),
            filter=_filter(args),
        )
        return recommend.Recommend(query, timeout=args.timeout, metadata=metadata)
    if args.command == "similar":
        similar = recommend_pb2.SimilarItemsRequest(
            item_id=args.item,
            limit=args.limit,
            exclude_item_ids=args.exclude,
            filter=_filter(args),
            relation=recommend_pb2.RELATION_COMPLEMENTARY
            if args.complements
            else recommend_pb2.RELATION_SIMILAR,
        )
        return recommend.SimilarItems(similar, timeout=args.timeout, metadata=metadata)
    if args.command == "describe":
        return recommend.DescribeModel(
            recommend_pb2.DescribeModelRequest(), timeout=args.timeout, metadata=metadata
        )
    if args.command == "assign":
        day = _request_file(args.request, dispatch_pb2.AssignJobsRequest)
        return dispatch.AssignJobs(day, timeout=args.timeout, metadata=metadata)
    if args.command == "rank":
        job = _request_file(args.request, dispatch_pb2.RankTechniciansRequest)
        return dispatch.RankTechnicians(job, timeout=args.timeout, metadata=metadata)
    return health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout, metadata=metadata
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m service.client",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--timeout", type=float, default=30.0, help="deadline in seconds")
    parser.add_argument("--token", default=os.environ.get("SHIFU_TOKEN", ""), help="bearer token")
    parser.add_argument("--ca", default="", help="PEM CA certificate: connect with TLS")
    parser.add_argument("--cert", default="", help="PEM client certificate (mutual TLS)")
    parser.add_argument("--key", default="", help="PEM client key (mutual TLS)")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("recommend", "similar"):
        sub = commands.add_parser(name)
        if name == "recommend":
            sub.add_argument("--user", default="")
            sub.add_argument("--scene", default="")
            sub.add_argument("--touchpoint", default="")
            sub.add_argument("--recent", action="append", default=[], help="session item, repeatable")
            sub.add_argument("--context", action="append", default=[], metavar="KEY=VALUE")
        else:
            sub.add_argument("--item", required=True)
            sub.add_argument(
                "--complements", action="store_true", help="items bought with it, not items like it"
            )
        sub.add_argument("--limit", type=int, default=10)
        sub.add_argument("--exclude", action="append", default=[], help="item to leave out, repeatable")
        sub.add_argument("--category", action="append", default=[], help="only this category, repeatable")
        sub.add_argument("--exclude-category", action="append", default=[])
        sub.add_argument("--min-price", type=float)
        sub.add_argument("--max-price", type=float)
        sub.add_argument("--any-stock", action="store_true", help="also items out of stock")
    for name in ("assign", "rank"):
        sub = commands.add_parser(name)
        sub.add_argument("--request", type=Path, required=True, help="request as JSON")
        if name == "assign":
            sub.add_argument("--summary", action="store_true", help="a schedule per technician, not JSON")
            sub.add_argument("--utc-offset", type=float, default=8.0, help="hours, for the summary's times")
    commands.add_parser("health").add_argument("--service", default="")
    commands.add_parser("describe")
    args = parser.parse_args(argv)
    try:
        with open_channel(args) as channel:
            response = call(args, channel)
    except grpc.RpcError as error:
        print(f"{error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    except (OSError, ValueError, json_format.ParseError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if getattr(args, "summary", False):
        print(summary(cast(dispatch_pb2.AssignJobsResponse, response), args.utc_offset))
    else:
        print(json.dumps(json_format.MessageToDict(response), indent=2, ensure_ascii=False))
    return 0


def summary(response: dispatch_pb2.AssignJobsResponse, utc_offset_hours: float) -> str:
    """Each technician's jobs in order with arrival (HH:MM local) and km, then the jobs left out by reason."""
    zone = timezone(timedelta(hours=utc_offset_hours))
    lines = [
        f"{dispatch_pb2.SolveStatus.Name(response.status).removeprefix('SOLVE_STATUS_').lower()}: "
        f"{len(response.assignments)} jobs assigned, {len(response.unassigned)} left out, "
        f"{response.travel_km:.1f} km, solved in {response.solve_ms:.0f} ms "
        f"(times UTC{utc_offset_hours:+g})"
    ]
    by_tech: dict[str, list[dispatch_pb2.Assignment]] = {}
    for a in response.assignments:
        by_tech.setdefault(a.technician_id, []).append(a)
    for tech, stops in sorted(by_tech.items()):
        stops.sort(key=lambda a: a.sequence)
        km = sum(a.travel_km for a in stops)
        lines.append(f"\n{tech}: {len(stops)} jobs, {km:.1f} km")
        for a in stops:
            when = "--:--"
            if a.HasField("arrival"):
                when = datetime.fromtimestamp(a.arrival.seconds, zone).strftime("%H:%M")
            lines.append(f"  {a.sequence:>2}. {when}  {a.job_id:<14} {a.travel_km:6.1f} km")
    if response.unassigned:
        reasons = Counter(dispatch_pb2.UnassignedReason.Name(u.reason) for u in response.unassigned)
        lines.append("\nleft out:")
        lines += [
            f"  {n:>4}  {name.removeprefix('UNASSIGNED_REASON_').lower()}"
            for name, n in reasons.most_common()
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
