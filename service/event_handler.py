"""EventService: storefront events, validated as a batch and recorded durably."""

from __future__ import annotations

from collections.abc import Collection

import grpc

from models.dispatch.problem import EARLIEST_TIME, LATEST_TIME
from models.errors import FieldError
from models.event_format import EVENT_TYPES, Event
from service import limits, metrics
from service.errors import rpc
from service.event_log import EventLog
from service.live_catalog import LiveRecommender
from service.pb.shifu.v1 import events_pb2 as pb
from service.pb.shifu.v1 import events_pb2_grpc


def to_event(message: pb.Event, where: str, event_types: Collection[str] = EVENT_TYPES) -> Event:
    if not message.HasField("timestamp"):
        raise FieldError(f"{where}.timestamp", "is required")
    seconds = message.timestamp.seconds + message.timestamp.nanos / 1e9
    if not EARLIEST_TIME <= seconds < LATEST_TIME:
        raise FieldError(f"{where}.timestamp", "must be between the years 2000 and 2200")
    if message.event_type not in event_types:
        raise FieldError(
            f"{where}.event_type", f"must be one of {', '.join(event_types)}, got {message.event_type!r}"
        )
    value = limits.amount(message.value, f"{where}.value") if message.HasField("value") else None
    return Event(
        event_id=limits.text(message.event_id, f"{where}.event_id", required=True),
        timestamp=seconds,
        user_id=limits.text(message.user_id, f"{where}.user_id", required=True),
        item_id=limits.text(message.item_id, f"{where}.item_id", required=True),
        event_type=message.event_type,
        touchpoint=limits.text(message.touchpoint, f"{where}.touchpoint"),
        scene=limits.text(message.scene, f"{where}.scene"),
        value=value,
        recommendation_id=limits.text(message.recommendation_id, f"{where}.recommendation_id"),
    )


class EventHandler(events_pb2_grpc.EventServiceServicer):
    def __init__(self, log: EventLog, live: LiveRecommender) -> None:
        """`live`: the serving model, whose catalog and event types the events are checked against."""
        self._log = log
        self._live = live

    @rpc
    def RecordEvents(
        self, request: pb.RecordEventsRequest, context: grpc.ServicerContext
    ) -> pb.RecordEventsResponse:
        limits.batch(len(request.events), "events")
        model = self._live.current()
        # The standard types always; the serving model's own ones (a custom `like`) as well.
        event_types = tuple(dict.fromkeys((*EVENT_TYPES, *(model.event_types if model else ()))))
        events = [to_event(message, f"events[{i}]", event_types) for i, message in enumerate(request.events)]
        recorded, duplicates = self._log.record(events)
        unknown = 0 if model is None else sum(model.find(e.item_id) is None for e in events)
        metrics.EVENTS.labels("recorded").inc(recorded)
        metrics.EVENTS.labels("duplicate").inc(duplicates)
        metrics.EVENTS.labels("unknown_item").inc(unknown)
        return pb.RecordEventsResponse(recorded=recorded, duplicates=duplicates, unknown_items=unknown)
