"""RecordEvents takes the event types the serving model was trained with besides the standard ones, and
counts the events of items its catalog does not have."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from models.errors import FieldError
from models.event_format import EVENT_TYPES
from service.event_handler import EventHandler, to_event
from service.event_log import EventLog
from service.live_catalog import LiveRecommender
from service.pb.shifu.v1 import events_pb2 as epb


def message(event_type: str, item_id: str = "i1") -> Any:
    return epb.Event(
        event_id=str(uuid.uuid4()), timestamp=Timestamp(seconds=1_790_000_000), user_id="u", item_id=item_id,
        event_type=event_type,
    )  # fmt: skip


@dataclass(frozen=True)
class _Model:
    """What the handler asks of the serving model."""

    event_types: tuple[str, ...]
    items: frozenset[str]

    def find(self, item_id: str) -> int | None:
        return 0 if item_id in self.items else None


@dataclass
class _Live:
    model: _Model | None

    def current(self) -> _Model | None:
        return self.model


class _Aborted(Exception):
    pass


class _Context:
    def abort_with_status(self, status: grpc.Status) -> None:
        raise _Aborted(status.code, status.details)


def handler(tmp_path: Path, model: _Model | None) -> EventHandler:
    log = EventLog(tmp_path / "events", tmp_path / "events.db")
    return EventHandler(log, cast(LiveRecommender, _Live(model)))


def record(h: EventHandler, *events: Any) -> Any:
    return h.RecordEvents(epb.RecordEventsRequest(events=events), cast(grpc.ServicerContext, _Context()))


def test_a_type_the_serving_model_was_trained_with_is_recorded(tmp_path: Path) -> None:
    h = handler(tmp_path, _Model(("view", "like", "order"), frozenset({"i1"})))
    assert record(h, message("like"), message("view")).recorded == 2


def test_without_that_model_the_same_type_is_refused_naming_the_field(tmp_path: Path) -> None:
    for model in (None, _Model(("view", "order"), frozenset({"i1"}))):
        with pytest.raises(_Aborted) as refused:
            record(handler(tmp_path / str(id(model)), model), message("view"), message("like"))
        code, details = refused.value.args
        assert code is grpc.StatusCode.INVALID_ARGUMENT and details.startswith("events[1].event_type")


def test_events_of_items_the_catalog_does_not_have_are_recorded_and_counted(tmp_path: Path) -> None:
    h = handler(tmp_path, _Model(EVENT_TYPES, frozenset({"i1"})))
    answer = record(h, message("view", "i1"), message("view", "zzz"), message("click", "zzz"))
    assert (answer.recorded, answer.unknown_items) == (3, 2)
    assert record(handler(tmp_path / "none", None), message("view", "zzz")).unknown_items == 0


@pytest.mark.parametrize("event_type", ["like", "", "VIEW"])
def test_to_event_refuses_other_types_naming_the_types_it_takes(event_type: str) -> None:
    with pytest.raises(FieldError) as refused:
        to_event(message(event_type), "events[3]", EVENT_TYPES)
    assert refused.value.field == "events[3].event_type"
    assert "impression, view, click, cart, order" in str(refused.value)
