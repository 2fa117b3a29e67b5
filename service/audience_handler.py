"""AudienceService: the current audience set's tags of a user, and a tag's members a page at a time.

The logic (validation, paging tokens) is transport-free functions; the servicer only converts."""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from models.audiences import audience_set
from models.audiences.audience_set import AudienceSet, Membership
from models.errors import FieldError
from service import limits
from service.errors import RpcFailure, rpc
from service.pb.shifu.v1 import audiences_pb2 as pb
from service.pb.shifu.v1 import audiences_pb2_grpc
from service.registry import VersionRegistry

SERVICE = pb.DESCRIPTOR.services_by_name["AudienceService"].full_name
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def page_size(value: int) -> int:
    if not 0 <= value <= MAX_PAGE_SIZE:
        raise FieldError(
            "page_size", f"must be from 1 to {MAX_PAGE_SIZE} (0 for {DEFAULT_PAGE_SIZE}), got {value}"
        )
    return value or DEFAULT_PAGE_SIZE


def token(tag: str, category: str, last_user: str) -> str:
    """Opaque to clients: the page's query and the last user id given."""
    text = json.dumps([tag, category, last_user], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode()


def after_user(page_token: str, tag: str, category: str) -> str:
    """The user id a page starts after; FieldError for a token not made by this query."""
    if not page_token:
        return ""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(page_token.encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        decoded = None
    valid = isinstance(decoded, list) and len(decoded) == 3 and all(isinstance(x, str) for x in decoded)
    if not valid:
        raise FieldError("page_token", "is not a token of a previous ListAudience response")
    if decoded[:2] != [tag, category]:
        raise FieldError("page_token", "was given for another tag or category")
    return str(decoded[2])


def _since(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMicroseconds(round(seconds * 1e6))
    return stamp


def _member(m: Membership) -> pb.AudienceMember:
    return pb.AudienceMember(
        user_id=m.user_id,
        category=m.category,
        since=_since(m.since_seconds),
        suggested_item_ids=m.suggested_item_ids,
    )


def audience_registry(root: Path) -> VersionRegistry[AudienceSet]:
    """The newest audience set that verifies, swapped in when a newer one is published."""
    return VersionRegistry("audiences", root, audience_set.load)


class AudienceHandler(audiences_pb2_grpc.AudienceServiceServicer):
    def __init__(self, audiences: VersionRegistry[AudienceSet]) -> None:
        self._audiences = audiences

    def _current(self) -> AudienceSet:
        current = self._audiences.current()
        if current is None:
            raise RpcFailure(
                grpc.StatusCode.UNAVAILABLE, f"no audience set loaded yet from {self._audiences.root}"
            )
        return current

    @rpc
    def GetUserTags(
        self, request: pb.GetUserTagsRequest, context: grpc.ServicerContext
    ) -> pb.GetUserTagsResponse:
        user = limits.text(request.user_id, "user_id", required=True)
        current = self._current()
        tags = [
            pb.UserTag(tag=m.tag, category=m.category, since=_since(m.since_seconds))
            for m in current.of_user(user)
        ]
        return pb.GetUserTagsResponse(tags=tags, audience_version=current.version)

    @rpc
    def ListAudience(
        self, request: pb.ListAudienceRequest, context: grpc.ServicerContext
    ) -> pb.ListAudienceResponse:
        tag = limits.text(request.tag, "tag", required=True)
        category = limits.text(request.category, "category")
        size = page_size(request.page_size)
        start = after_user(request.page_token, tag, category)
        current = self._current()
        if tag not in current.tag_names:
            raise FieldError(
                "tag",
                f"{tag!r} is not a tag of audience set {current.version} ({', '.join(current.tag_names)})",
            )
        members, total, more = current.members(tag, category, start, size)
        return pb.ListAudienceResponse(
            members=[_member(m) for m in members],
            next_page_token=token(tag, category, members[-1].user_id) if more else "",
            total_size=total,
            audience_version=current.version,
        )
