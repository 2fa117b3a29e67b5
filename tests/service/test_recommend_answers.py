"""What a storefront sees through a real server on the generated world: a visitor's session is completed
with what goes with it, reasons name only related items, complements fit the item's brand and city,
context is read as the models know it, and events of unknown items or types are not taken silently."""

from __future__ import annotations

import uuid
from pathlib import Path

import grpc
import pandas as pd
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from service.pb.shifu.v1 import events_pb2 as epb
from service.pb.shifu.v1 import events_pb2_grpc, recommend_pb2_grpc
from service.pb.shifu.v1 import recommend_pb2 as pb

ANY_STOCK = pb.ItemFilter(stock=pb.STOCK_FILTER_ANY)
# The kinds a purifier may explain: its own, and what the demo's catalog declares for purifiers.
RELATED_TO_PURIFIERS = {"water_purifier", "purifier_filter", "installation", "cleaning", "repair"}


@pytest.fixture(scope="module")
def recommend(channel: grpc.Channel) -> recommend_pb2_grpc.RecommendServiceStub:
    return recommend_pb2_grpc.RecommendServiceStub(channel)


@pytest.fixture(scope="module")
def items(world: dict[str, Path]) -> pd.DataFrame:
    return pd.read_csv(world["items.csv"], keep_default_na=False).set_index("item_id")


def purifiers(items: pd.DataFrame) -> list[str]:
    return items.index[items["category"] == "water_purifier"].tolist()


def test_a_visitor_looking_at_two_purifiers_is_shown_their_filters_and_installation(
    recommend: recommend_pb2_grpc.RecommendServiceStub, items: pd.DataFrame
) -> None:
    looked_at = purifiers(items)[:2]
    brands = set(items.loc[looked_at, "brand"])
    answer = recommend.Recommend(
        pb.RecommendRequest(user_id="first-visit", recent_item_ids=looked_at, context={"city": "shanghai"}),
        timeout=10,
    )
    shown = items.loc[[i.item_id for i in answer.items]]
    filters = shown[shown["category"] == "purifier_filter"]
    assert set(filters["brand"]) == brands  # a filter for each purifier looked at, and no other
    installation = shown[shown["category"] == "installation"]
    assert len(installation) >= 1
    assert all("for:water_purifier" in t and "city:shanghai" in t for t in installation["tags"])
    for item in answer.items:
        if item.reasons[0].code in (pb.REASON_CODE_GOES_WITH, pb.REASON_CODE_SIMILAR_TO_SESSION):
            assert item.reasons[0].related_item_id in looked_at
            assert items.loc[item.item_id, "category"] in RELATED_TO_PURIFIERS, item


def test_because_you_looked_at_names_only_an_item_of_the_same_kind_or_one_it_goes_with(
    recommend: recommend_pb2_grpc.RecommendServiceStub, items: pd.DataFrame
) -> None:
    named = 0
    for first in range(0, 20, 2):
        looked_at = purifiers(items)[first : first + 2]
        answer = recommend.Recommend(
            pb.RecommendRequest(user_id="first-visit", recent_item_ids=looked_at, limit=20), timeout=10
        )
        for item in answer.items:
            if item.reasons[0].code == pb.REASON_CODE_SIMILAR_TO_SESSION:
                named += 1
                assert items.loc[item.item_id, "category"] in RELATED_TO_PURIFIERS, item
    assert named > 0


def test_a_purifiers_complementary_filters_are_of_its_brand(
    recommend: recommend_pb2_grpc.RecommendServiceStub, items: pd.DataFrame
) -> None:
    same, filters = 0, 0
    for purifier in purifiers(items):
        answer = recommend.SimilarItems(
            pb.SimilarItemsRequest(item_id=purifier, relation=pb.RELATION_COMPLEMENTARY, filter=ANY_STOCK),
            timeout=10,
        )
        for item in answer.items:
            if items.loc[item.item_id, "category"] == "purifier_filter":
                filters += 1
                same += items.loc[item.item_id, "brand"] == items.loc[purifier, "brand"]
    assert filters > 0 and same / filters >= 0.8


def test_context_values_are_read_ignoring_case_and_unknown_ones_are_warned_about(
    recommend: recommend_pb2_grpc.RecommendServiceStub,
) -> None:
    def ask(context: dict[str, str]) -> pb.RecommendResponse:
        return recommend.Recommend(pb.RecommendRequest(user_id="first-visit", context=context), timeout=10)

    lower, capital = ask({"city": "shanghai"}), ask({"city": "Shanghai"})
    assert [i.item_id for i in capital.items] == [i.item_id for i in lower.items]
    assert not [w for w in capital.warnings if w.code == pb.WARNING_CODE_UNKNOWN_CONTEXT]
    assert [i.item_id for i in capital.items] != [i.item_id for i in ask({}).items]
    unknown = ask({"city": "Atlantis", "devise": "ios"})
    assert {(w.code, w.field, w.value) for w in unknown.warnings if w.field != "user_id"} == {
        (pb.WARNING_CODE_UNKNOWN_CONTEXT, "context[city]", "Atlantis"),
        (pb.WARNING_CODE_UNKNOWN_CONTEXT, "context", "devise"),
    }


def event(item_id: str, event_type: str = "view") -> epb.Event:
    return epb.Event(
        event_id=str(uuid.uuid4()),
        timestamp=Timestamp(seconds=1_790_000_000),
        user_id="u-events",
        item_id=item_id,
        event_type=event_type,
    )


def test_events_of_items_the_catalog_never_had_are_counted(
    channel: grpc.Channel, items: pd.DataFrame
) -> None:
    events = events_pb2_grpc.EventServiceStub(channel)
    known = items.index[0]
    answer = events.RecordEvents(
        epb.RecordEventsRequest(events=[event(known), event("zzz"), event("zzz-2")]), timeout=10
    )
    assert (answer.recorded, answer.unknown_items) == (3, 2)


def test_the_model_lists_the_event_types_it_was_trained_with(
    recommend: recommend_pb2_grpc.RecommendServiceStub, channel: grpc.Channel
) -> None:
    types = recommend.DescribeModel(pb.DescribeModelRequest(), timeout=10).event_types
    assert {"view", "click", "cart", "order"} <= set(types)
    with pytest.raises(grpc.RpcError) as refused:
        events_pb2_grpc.EventServiceStub(channel).RecordEvents(
            epb.RecordEventsRequest(events=[event("x", "like")]), timeout=10
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "events[0].event_type" in (refused.value.details() or "")


def test_a_visitor_whose_city_is_unknown_is_offered_no_city_bound_service(
    recommend: recommend_pb2_grpc.RecommendServiceStub, items: pd.DataFrame
) -> None:
    answer = recommend.Recommend(
        pb.RecommendRequest(user_id="first-visit", recent_item_ids=purifiers(items)[:2]), timeout=10
    )
    complements = [i for i in answer.items if i.reasons[0].code == pb.REASON_CODE_GOES_WITH]
    assert complements  # the filters
    assert not any("city:" in items.loc[i.item_id, "tags"] for i in complements)
