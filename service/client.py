"""A small command-line client for trying a running service (`--help` lists the commands).

python -m service.client --target 127.0.0.1:50051 recommend --user u00042 --scene new_home --limit 5
python -m service.client similar --item i00012 [--complements]   (same kind, or what goes with it)
python -m service.client describe                           (the model: its scenes, touchpoints, metrics)
python -m service.client assign --request .shifu/demo/dispatch_day.json [--summary]
python -m service.client rank --request .shifu/demo/rank_request.json   (a RankTechniciansRequest in JSON)
python -m service.client offer-slots --request booking.json   (an OfferSlotsRequest in JSON)
python -m service.client get-items --item i00012 --item i00013 > items.json
python -m service.client upsert-items --request items.json   (or a JSON list, or JSON Lines: an item a line)
python -m service.client delete-items --item i00012          (or --request ids.json)
python -m service.client record-events --request events.jsonl   (an event a line, or a JSON request/list)
python -m service.client health

A request file is JSON (`-`: standard input). The catalog and event commands also take a JSON list of
items, events or item ids, or JSON Lines (.jsonl), and send more than 1,000 in batches. An item's tags
may be a list, as get-items prints them, or {"values": [...]}, so get-items' output goes back as it is.
Numbers are printed rounded (--exact: as received). With TLS: --ca ca.pem (and --cert/--key for mutual
TLS); with tokens: --token or SHIFU_TOKEN.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service import client_input
from service.pb.shifu.v1 import (
    catalog_pb2,
    catalog_pb2_grpc,
    dispatch_pb2,
    dispatch_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    recommend_pb2,
    recommend_pb2_grpc,
)

Metadata = tuple[tuple[str, str], ...]


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


def _recommend(args: argparse.Namespace, channel: grpc.Channel, metadata: Metadata) -> Message:
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
    stub = recommend_pb2_grpc.RecommendServiceStub(channel)
    return stub.Recommend(query, timeout=args.timeout, metadata=metadata)


def _similar(args: argparse.Namespace, channel: grpc.Channel, metadata: Metadata) -> Message:
    similar = recommend_pb2.SimilarItemsRequest(
        item_id=args.item,
        limit=args.limit,
        exclude_item_ids=args.exclude,
        filter=_filter(args),
        relation=recommend_pb2.RELATION_COMPLEMENTARY if args.complements else recommend_pb2.RELATION_SIMILAR,
    )
    stub = recommend_pb2_grpc.RecommendServiceStub(channel)
    return stub.SimilarItems(similar, timeout=args.timeout, metadata=metadata)


def _describe(args: argparse.Namespace, channel: grpc.Channel, metadata: Metadata) -> Message:
    stub = recommend_pb2_grpc.RecommendServiceStub(channel)
    return stub.DescribeModel(recommend_pb2.DescribeModelRequest(), timeout=args.timeout, metadata=metadata)


def _assign(args: argparse.Namespace, channel: grpc.Channel, metadata: Metadata) -> Message:
    day = client_input.read_request(args.request, dispatch_pb2.AssignJobsRequest)
    stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
    return stub.AssignJobs(day, timeout=args.timeout, metadata=metadata)


def _rank(args: argparse.Namespace, channel: grpc.Channel, metadata: Metadata) -> Message:
    job = client_input.read_request(args.request, dispatch_pb2.RankTechniciansRequest)
    stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
    return stub.RankTechnicians(job, timeout=args.timeout, metadata=metadata)


def _offer_slots(args: argparse.Namespace, channel: grpc.Channel, metadata: Metadata) -> Message:
    booking = client_input.read_request(args.request, dispatch_pb2.OfferSlotsRequest)
    stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
    return stub.OfferSlots(booking, timeout=args.timeout, metadata=metadata)


def _health(args: argparse.Namespace, channel: grpc.Channel, metadata: Metadata) -> Message:
    stub = health_pb2_grpc.HealthStub(channel)
    request = health_pb2.HealthCheckRequest(service=args.service)
    return stub.Check(request, timeout=args.timeout, metadata=metadata)


def _batched(
    args: argparse.Namespace, metadata: Metadata, requests: list[Message], method: Callable[..., Message]
) -> Message:
    """Each batch in turn, their answers added up; a failure says where its batch is in the file."""
    total: Message | None = None
    done = 0
    for request in requests:
        ((_, entries),) = request.ListFields()  # each of these requests is one list
        try:
            part = method(request, timeout=args.timeout, metadata=metadata)
        except grpc.RpcError as error:
            if len(requests) > 1:
                error.add_note(
                    f"in the batch of entries {done + 1}-{done + len(entries)}, where [0] is entry"
                    f" {done + 1}; the {done} entries before it were sent"
                )
            raise
        total = part if total is None else client_input.add_up(total, part)
        done += len(entries)
    assert total is not None  # read_batches never gives an empty list
    return total


def _batch_command(
    stub_type: Callable[[grpc.Channel], Any], method: str, request_type: type[Message]
) -> Callable[[argparse.Namespace, grpc.Channel, Metadata], Message]:
    def run(args: argparse.Namespace, channel: grpc.Channel, metadata: Metadata) -> Message:
        requests = client_input.read_batches(args.request, request_type, getattr(args, "item", []))
        return _batched(args, metadata, requests, getattr(stub_type(channel), method))

    return run


CATALOG = catalog_pb2_grpc.CatalogServiceStub
COMMANDS: dict[str, Callable[[argparse.Namespace, grpc.Channel, Metadata], Message]] = {
    "recommend": _recommend,
    "similar": _similar,
    "describe": _describe,
    "assign": _assign,
    "rank": _rank,
    "offer-slots": _offer_slots,
    "upsert-items": _batch_command(
        catalog_pb2_grpc.CatalogServiceStub, "UpsertItems", catalog_pb2.UpsertItemsRequest
    ),
    "get-items": _batch_command(CATALOG, "GetItems", catalog_pb2.GetItemsRequest),
    "delete-items": _batch_command(
        catalog_pb2_grpc.CatalogServiceStub, "DeleteItems", catalog_pb2.DeleteItemsRequest
    ),
    "record-events": _batch_command(
        events_pb2_grpc.EventServiceStub, "RecordEvents", events_pb2.RecordEventsRequest
    ),
    "health": _health,
}
# The catalog's and events' answers are small and their zeros matter ("added": 0): printed in full.
IN_FULL = {"upsert-items", "get-items", "delete-items", "record-events"}


def call(args: argparse.Namespace, channel: grpc.Channel) -> Message:
    metadata: Metadata = (("authorization", f"Bearer {args.token}"),) if args.token else ()
    return COMMANDS[args.command](args, channel, metadata)


def _item_query_arguments(sub: argparse.ArgumentParser, name: str) -> None:
    if name == "recommend":
        sub.add_argument("--user", default="")
        sub.add_argument("--scene", default="")
        sub.add_argument("--touchpoint", default="")
        sub.add_argument("--recent", action="append", default=[], help="session item, repeatable")
        sub.add_argument("--context", action="append", default=[], metavar="KEY=VALUE")
    else:
        sub.add_argument("--item", required=True)
        sub.add_argument("--complements", action="store_true", help="items bought with it, not items like it")
    sub.add_argument("--limit", type=int, default=10)
    sub.add_argument("--exclude", action="append", default=[], help="item to leave out, repeatable")
    sub.add_argument("--category", action="append", default=[], help="only this category, repeatable")
    sub.add_argument("--exclude-category", action="append", default=[])
    sub.add_argument("--min-price", type=float)
    sub.add_argument("--max-price", type=float)
    sub.add_argument("--any-stock", action="store_true", help="also items out of stock")


HELP = {
    "recommend": "items for a user (or a visitor) in a scene and touchpoint",
    "similar": "items like an item, or (--complements) bought with it",
    "describe": "the serving model: version, scenes, touchpoints, holdout metrics",
    "assign": "assign a day's jobs to technicians (AssignJobsRequest JSON)",
    "rank": "rank technicians for one job (RankTechniciansRequest JSON)",
    "offer-slots": "which appointment windows a new job fits into the current plan (OfferSlotsRequest JSON)",
    "upsert-items": "add or change catalog items (JSON request, JSON list or JSON Lines)",
    "get-items": "the catalog's items as the service now has them",
    "delete-items": "take items out of the catalog",
    "record-events": "record storefront events (JSON request, JSON list or JSON Lines)",
    "health": "the server's health, or one service's (--service)",
}


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service.client",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--target", default="127.0.0.1:50051", help="host:port (default 127.0.0.1:50051)")
    parser.add_argument("--timeout", type=float, default=30.0, help="deadline in seconds")
    parser.add_argument("--token", default=os.environ.get("SHIFU_TOKEN", ""), help="bearer token")
    parser.add_argument("--ca", default="", help="PEM CA certificate: connect with TLS")
    parser.add_argument("--cert", default="", help="PEM client certificate (mutual TLS)")
    parser.add_argument("--key", default="", help="PEM client key (mutual TLS)")
    parser.add_argument("--exact", action="store_true", help="print numbers unrounded")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        sub = commands.add_parser(name, help=HELP[name], description=HELP[name])
        if name in ("recommend", "similar"):
            _item_query_arguments(sub, name)
        elif name in ("get-items", "delete-items"):
            sub.add_argument("--item", action="append", default=[], help="item id, repeatable")
            sub.add_argument("--request", type=Path, help="more ids: JSON request, JSON list or JSON Lines")
        elif name not in ("health", "describe"):
            sub.add_argument("--request", type=Path, required=True, help="the request as JSON; -: stdin")
    commands.choices["assign"].add_argument(
        "--summary", action="store_true", help="a schedule per technician, not JSON"
    )
    commands.choices["assign"].add_argument(
        "--utc-offset", type=float, default=8.0, help="hours, for the summary's times"
    )
    commands.choices["health"].add_argument("--service", default="")
    return parser


def rounded(value: Any) -> Any:
    """Floats as a person reads them: 4 decimals (0.1 m in km, scores to 1e-4), 3 significant digits
    below 0.01 so that a small score does not print as 0."""
    if isinstance(value, float):
        return round(value, 4) if abs(value) >= 0.01 or value == 0 else float(f"{value:.3g}")
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item) for item in value]
    return value


def _in_order(fields: Mapping[str, FieldDescriptor], shown: dict[str, Any]) -> dict[str, Any]:
    ordered = {}
    for field in fields.values():  # in the .proto's order
        name, inner = field.camelcase_name, field.message_type
        if name not in shown:
            continue
        value = shown[name]
        if inner and not inner.GetOptions().map_entry and not inner.full_name.startswith("google.protobuf."):
            nested = inner.fields_by_name
            value = [_in_order(nested, v) for v in value] if field.is_repeated else _in_order(nested, value)
        ordered[name] = value
    return ordered


def in_full(message: Message) -> dict[str, Any]:
    """Every field, zeros and empty lists too, in the .proto's order (protobuf puts the zeros last)."""
    shown = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
    return _in_order(message.DESCRIPTOR.fields_by_name, shown)


def show(args: argparse.Namespace, response: Message) -> str:
    if getattr(args, "summary", False):
        return summary(cast(dispatch_pb2.AssignJobsResponse, response), args.utc_offset)
    shown = in_full(response) if args.command in IN_FULL else json_format.MessageToDict(response)
    return json.dumps(shown if args.exact else rounded(shown), indent=2, ensure_ascii=False)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        with open_channel(args) as channel:
            response = call(args, channel)
    except grpc.RpcError as error:
        notes = "".join(f"\n  ({note})" for note in getattr(error, "__notes__", []))
        print(f"{error.code().name}: {error.details()}{notes}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        print(show(args, response), flush=True)
    except BrokenPipeError:
        # The reader went away (`| head`): what is left goes nowhere, quietly (Python's documented way).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def summary(response: dispatch_pb2.AssignJobsResponse, utc_offset_hours: float) -> str:
    """Each technician's day in order (HH:MM local): its jobs with km, its breaks, the jobs a re-plan
    moved to it marked; then the jobs left out by reason."""
    zone = timezone(timedelta(hours=utc_offset_hours))

    def hhmm(stamp: Any) -> str:
        return datetime.fromtimestamp(stamp.seconds, zone).strftime("%H:%M")

    moved = (
        f", {plural(response.reassigned_jobs, 'job')} moved from their technician"
        if response.reassigned_jobs
        else ""
    )
    lines = [
        f"{dispatch_pb2.SolveStatus.Name(response.status).removeprefix('SOLVE_STATUS_').lower()}: "
        f"{plural(len(response.assignments), 'job')} assigned, {len(response.unassigned)} left out{moved}, "
        f"{response.travel_km:.1f} km, solved in {response.solve_ms:.0f} ms "
        f"(times UTC{utc_offset_hours:+g})"
    ]
    stops = {a.job_id: a for a in response.assignments}
    for route in response.routes:
        day = (
            f" on {datetime.fromtimestamp(route.shift.start.seconds, zone):%a %d %b}"
            if route.HasField("shift")
            else ""
        )
        hours = (
            f", {hhmm(route.start)}-{hhmm(route.end)}"
            if route.HasField("start") and route.HasField("end")
            else ""
        )
        jobs = plural(len(route.job_ids), "job")
        lines.append(f"\n{route.technician_id}{day}: {jobs}, {route.travel_km:.1f} km{hours}")
        events: list[tuple[float, str]] = []
        for job_id in route.job_ids:
            a = stops[job_id]
            when = hhmm(a.arrival) if a.HasField("arrival") else "--:--"
            mark = "  (moved here)" if a.reassigned else ""
            at = a.arrival.seconds if a.HasField("arrival") else -1.0
            events.append((at, f"  {a.sequence:>2}. {when}  {a.job_id:<14} {a.travel_km:6.1f} km{mark}"))
        for pause in route.breaks:
            events.append(
                (pause.start.seconds - 0.5, f"      {hhmm(pause.start)}  break, {pause.duration_minutes} min")
            )
        lines += [text for _, text in sorted(events, key=lambda e: e[0])]
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
