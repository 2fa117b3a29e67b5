"""AudienceService over a real server and channel: a user's tags, a tag's members page by page, bad
input refused naming the field, a newly published audience set picked up by itself, and a touchpoint
rule block for a tag answering through Recommend."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pandas as pd
import pytest

from service.pb.shifu.v1 import audiences_pb2 as pb
from service.pb.shifu.v1 import audiences_pb2_grpc, recommend_pb2, recommend_pb2_grpc
from tests.support import start_server
from tests.support.audience_log import AS_OF, planted_log
from training import audiences


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    directory = tmp_path_factory.mktemp("audience-log")
    events, items = planted_log(n=5).write(directory)
    out = directory / "audiences"
    audiences.run(events, items, out, config=audiences.AudienceConfig(as_of=AS_OF.timestamp()))
    return events, items, out


# The home banner shows users due a refill their filters; everyone else gets the touchpoint's rule.
TOUCHPOINTS = """
[touchpoint.home_banner]
max_per_category = 2

[touchpoint.home_banner.tag.refill_due]
categories = ["purifier_filter"]
"""


@pytest.fixture(scope="module")
def channel(model_dir: Path, published: tuple[Path, Path, Path]) -> Iterator[grpc.Channel]:
    rules = published[2].parent / "touchpoints.toml"
    rules.write_text(TOUCHPOINTS)
    running = start_server(
        model_dir, audiences=str(published[2]), services="recommend", touchpoints=str(rules)
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=10)
            yield channel
    finally:
        running.shutdown()


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> audiences_pb2_grpc.AudienceServiceStub:
    return audiences_pb2_grpc.AudienceServiceStub(channel)


def test_a_tag_block_of_a_touchpoint_rule_answers_through_recommend(
    channel: grpc.Channel, world: dict[str, Path]
) -> None:
    category_of = pd.read_csv(world["items.csv"], dtype=str).set_index("item_id")["category"]
    recommend = recommend_pb2_grpc.RecommendServiceStub(channel)
    categories = {}
    for user in ("refill_due_planted_000", "dormant_planted_000"):
        request = recommend_pb2.RecommendRequest(user_id=user, touchpoint="home_banner", limit=6)
        answer = recommend.Recommend(request, timeout=10)
        categories[user] = {category_of[item.item_id] for item in answer.items}
    assert categories["refill_due_planted_000"] == {"purifier_filter"}
    assert len(categories["dormant_planted_000"]) > 1


def test_user_tags_with_category_and_since(stub: audiences_pb2_grpc.AudienceServiceStub) -> None:
    answer = stub.GetUserTags(pb.GetUserTagsRequest(user_id="abandoned_cart_planted_000"), timeout=5)
    assert [(t.tag, t.category) for t in answer.tags] == [("abandoned_cart", "sofa")]
    since = answer.tags[0].since.ToDatetime().timestamp()
    assert AS_OF.timestamp() - 3 * 86400 < since < AS_OF.timestamp() - 86400
    assert answer.audience_version
    dormant = stub.GetUserTags(pb.GetUserTagsRequest(user_id="dormant_planted_001"), timeout=5)
    assert [(t.tag, t.category) for t in dormant.tags] == [("dormant", "")]
    assert not stub.GetUserTags(pb.GetUserTagsRequest(user_id="nobody"), timeout=5).tags


def test_list_audience_pages_through_every_member_once(stub: audiences_pb2_grpc.AudienceServiceStub) -> None:
    seen: list[str] = []
    token, pages = "", 0
    while True:
        page = stub.ListAudience(
            pb.ListAudienceRequest(tag="refill_due", page_size=2, page_token=token), timeout=5
        )
        seen += [m.user_id for m in page.members]
        assert all(m.suggested_item_ids and m.category for m in page.members)
        pages, token = pages + 1, page.next_page_token
        if not token:
            break
    assert page.total_size == len(seen) == len(set(seen)) == 7  # 5 every 30 days, 2 with one order
    assert seen == sorted(seen) and pages == 4
    only = stub.ListAudience(pb.ListAudienceRequest(tag="refill_due", category="cleaning"), timeout=5)
    assert {m.category for m in only.members} == {"cleaning"} and only.total_size == 2


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.ListAudienceRequest(tag="refill_due", page_size=-1), "page_size"),
        (pb.ListAudienceRequest(tag="refill_due", page_size=1001), "page_size"),
        (pb.ListAudienceRequest(tag=""), "tag"),
        (pb.ListAudienceRequest(tag="no_such_tag"), "tag"),
        (pb.ListAudienceRequest(tag="refill_due", page_token="%%%"), "page_token"),
        (pb.ListAudienceRequest(tag="dormant", page_token="WyJyZWZpbGxfZHVlIiwiIiwiYSJd"), "page_token"),
        (pb.GetUserTagsRequest(user_id=""), "user_id"),
        (pb.GetUserTagsRequest(user_id="x" * 300), "user_id"),
    ],
)
def test_bad_input_is_invalid_argument_naming_the_field(
    stub: audiences_pb2_grpc.AudienceServiceStub, request_: object, field: str
) -> None:
    call = stub.GetUserTags if isinstance(request_, pb.GetUserTagsRequest) else stub.ListAudience
    with pytest.raises(grpc.RpcError) as refused:
        call(request_, timeout=5)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details().startswith(field)


def test_a_new_audience_set_is_picked_up(
    stub: audiences_pb2_grpc.AudienceServiceStub, published: tuple[Path, Path, Path]
) -> None:
    before = stub.GetUserTags(
        pb.GetUserTagsRequest(user_id="dormant_planted_001"), timeout=5
    ).audience_version
    events, items, out = published
    later = audiences.AudienceConfig(as_of=AS_OF.timestamp() + 40 * 86400)
    audiences.run(events, items, out, config=later)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answer = stub.GetUserTags(pb.GetUserTagsRequest(user_id="abandoned_cart_planted_000"), timeout=5)
        if answer.audience_version != before:
            break
        time.sleep(0.1)
    assert answer.audience_version != before
    assert "dormant" in {t.tag for t in answer.tags}  # 40 days later, everyone is dormant
