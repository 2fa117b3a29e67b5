"""RecommendService: requests to model queries and model answers to responses."""

from __future__ import annotations

import dataclasses
import math
import time
import uuid
from typing import cast

import grpc

from models.audiences.audience_set import AudienceSet
from models.errors import FieldError
from models.event_format import Exposure
from models.recommend.recommender import (
    DEFAULT_LIMIT,
    ItemFilter,
    ModelDescription,
    Query,
    ReasonCode,
    Recommender,
    Relation,
    RequestWarning,
    ScoredItem,
    UnknownItemError,
    WarningCode,
)
from service import limits, metrics
from service.errors import RpcFailure, rpc
from service.event_log import EventLog
from service.experiments import Assignment, LiveExperiments
from service.live_catalog import LiveRecommender
from service.pb.shifu.v1 import recommend_pb2 as pb
from service.pb.shifu.v1 import recommend_pb2_grpc
from service.registry import VersionRegistry

_REASON_CODES = {
    code: cast(pb.ReasonCode, pb.ReasonCode.Value(f"REASON_CODE_{code.name}")) for code in ReasonCode
}


def to_limit(limit: int, field: str = "limit") -> int:
    return limits.bounded(limit, field, limits.MAX_RECOMMEND_LIMIT, str(DEFAULT_LIMIT)) or DEFAULT_LIMIT


def to_filter(message: pb.ItemFilter) -> ItemFilter:
    bounds = {}
    for name in ("min_price", "max_price"):
        if message.HasField(name):
            value = getattr(message, name)
            if not math.isfinite(value) or value < 0:
                raise FieldError(f"filter.{name}", f"must be a finite number >= 0, got {value}")
            bounds[name] = value
    if bounds.get("min_price", 0.0) > bounds.get("max_price", math.inf):
        raise FieldError("filter.min_price", "is above filter.max_price")
    if message.stock not in pb.StockFilter.values():
        raise FieldError("filter.stock", f"unknown value {message.stock}")
    return ItemFilter(
        include_categories=frozenset(
            limits.texts(message.include_categories, "filter.include_categories", limits.MAX_CATEGORIES)
        ),
        exclude_categories=frozenset(
            limits.texts(message.exclude_categories, "filter.exclude_categories", limits.MAX_CATEGORIES)
        ),
        in_stock_only=message.stock != pb.STOCK_FILTER_ANY,
        **bounds,
    )


_RELATIONS = {
    pb.RELATION_UNSPECIFIED: Relation.SIMILAR,
    pb.RELATION_SIMILAR: Relation.SIMILAR,
    pb.RELATION_COMPLEMENTARY: Relation.COMPLEMENTARY,
}


def to_relation(value: int) -> Relation:
    if value not in _RELATIONS:
        raise FieldError("relation", f"unknown value {value}")
    return _RELATIONS[cast(pb.Relation, value)]


def to_query(request: pb.RecommendRequest) -> Query:
    return Query(
        user_id=limits.text(request.user_id, "user_id"),
        scene=limits.text(request.scene, "scene"),
        touchpoint=limits.text(request.touchpoint, "touchpoint"),
        limit=to_limit(request.limit),
        exclude_item_ids=limits.texts(request.exclude_item_ids, "exclude_item_ids", limits.MAX_ITEM_IDS),
        recent_item_ids=limits.texts(request.recent_item_ids, "recent_item_ids", limits.MAX_ITEM_IDS),
        context=limits.mapping(request.context, "context", limits.MAX_CONTEXT_ENTRIES),
        filter=to_filter(request.filter),
    )


_WARNING_CODES = {
    code: cast(pb.WarningCode, pb.WarningCode.Value(f"WARNING_CODE_{code.name}")) for code in WarningCode
}


def to_warnings(warnings: list[RequestWarning]) -> list[pb.Warning]:
    for warning in warnings:
        metrics.WARNINGS.labels(warning.code.value).inc()
    return [pb.Warning(code=_WARNING_CODES[w.code], field=w.field, value=w.value) for w in warnings]


def to_description(description: ModelDescription) -> pb.DescribeModelResponse:
    return pb.DescribeModelResponse(
        model_version=description.version,
        scenes=description.scenes,
        touchpoints=description.touchpoints,
        categories=description.categories,
        item_count=description.item_count,
        user_count=description.user_count,
        components=description.components,
        k=description.k,
        event_types=description.event_types,
        holdout=[
            pb.HoldoutMetrics(
                model=name,
                **{
                    key: float(values.get(key, 0.0))
                    for key in ("precision", "recall", "ndcg", "map", "coverage")
                },
                queries=int(values.get("queries", 0)),
            )
            for name, values in description.holdout.items()
        ],
    )


def to_items(items: list[ScoredItem]) -> list[pb.RecommendedItem]:
    return [
        pb.RecommendedItem(
            item_id=item.item_id,
            score=item.score,
            reasons=[
                pb.Reason(code=_REASON_CODES[r.code], text=r.text, related_item_id=r.related_item_id)
                for r in item.reasons
            ],
        )
        for item in items
    ]


def to_assignment(assignment: Assignment | None) -> pb.ExperimentAssignment | None:
    if assignment is None:
        return None
    return pb.ExperimentAssignment(name=assignment.experiment.name, arm=assignment.arm.name)


class RecommendHandler(recommend_pb2_grpc.RecommendServiceServicer):
    def __init__(
        self,
        live: LiveRecommender,
        events: EventLog | None = None,
        experiments: LiveExperiments | None = None,
        audiences: VersionRegistry[AudienceSet] | None = None,
    ) -> None:
        self._live = live
        self._events = events
        self._experiments = experiments
        self._audiences = audiences

    def _with_tags(self, query: Query) -> Query:
        """The query with the user's tags of the current audience set (for tag-targeted rules)."""
        current = self._audiences.current() if self._audiences is not None else None
        if current is None or not query.user_id:
            return query
        return dataclasses.replace(query, user_tags=frozenset(m.tag for m in current.of_user(query.user_id)))

    def _model(self) -> Recommender:
        model = self._live.current()
        if model is None:
            raise RpcFailure(
                grpc.StatusCode.UNAVAILABLE,
                f"no model version loaded yet from {self._live.registry.root}; "
                "train one with `python -m training train`",
            )
        return model

    @rpc
    def Recommend(self, request: pb.RecommendRequest, context: grpc.ServicerContext) -> pb.RecommendResponse:
        query = self._with_tags(to_query(request))
        model = self._model()
        # A request without a user id has nothing to be sticky by: it is outside every experiment.
        assignment = self._experiments.assign(query.user_id, query.touchpoint) if self._experiments else None
        if assignment is not None:
            model = assignment.model
        asked = query
        if not query.recent_item_ids and query.user_id and self._events is not None:
            # The user's events of the last day, recorded through EventService: their session.
            query = dataclasses.replace(
                query, recent_item_ids=self._events.session(query.user_id, time.time())
            )
        response = pb.RecommendResponse(
            items=to_items(model.recommend(query)),
            model_version=model.version,
            recommendation_id=uuid.uuid4().hex,
            warnings=to_warnings(model.warnings(asked)),
            experiment=to_assignment(assignment),
        )
        if assignment is not None:
            self._expose(response, query, assignment)
        return response

    def _expose(self, response: pb.RecommendResponse, query: Query, assignment: Assignment) -> None:
        """Records the answer as an exposure before it leaves: an answer whose exposure is lost would
        bias the experiment, so a disk that refuses it fails the call."""
        if self._events is None:
            return
        exposure = Exposure(
            recommendation_id=response.recommendation_id,
            timestamp=time.time(),
            user_id=query.user_id,
            touchpoint=query.touchpoint,
            experiment=assignment.experiment.name,
            arm=assignment.arm.name,
            model_version=response.model_version,
            item_ids=tuple(item.item_id for item in response.items),
        )
        try:
            self._events.exposures.write(exposure)
        except OSError as error:
            raise RpcFailure(grpc.StatusCode.UNAVAILABLE, f"cannot record the exposure: {error}") from None
        metrics.EXPOSURES.labels(exposure.experiment, exposure.arm).inc()

    @rpc
    def SimilarItems(
        self, request: pb.SimilarItemsRequest, context: grpc.ServicerContext
    ) -> pb.SimilarItemsResponse:
        limits.text(request.item_id, "item_id", required=True)
        limit = to_limit(request.limit)
        item_filter = to_filter(request.filter)
        exclude = limits.texts(request.exclude_item_ids, "exclude_item_ids", limits.MAX_ITEM_IDS)
        relation = to_relation(request.relation)
        model = self._model()
        try:
            items = model.similar(request.item_id, limit, item_filter, exclude, relation)
        except UnknownItemError:
            raise RpcFailure(
                grpc.StatusCode.NOT_FOUND,
                f"item_id: {request.item_id!r} is not in model version {model.version}",
            ) from None
        return pb.SimilarItemsResponse(
            items=to_items(items),
            model_version=model.version,
            recommendation_id=uuid.uuid4().hex,
            warnings=to_warnings(model.filter_warnings(item_filter, exclude)),
        )

    @rpc
    def DescribeModel(
        self, request: pb.DescribeModelRequest, context: grpc.ServicerContext
    ) -> pb.DescribeModelResponse:
        return to_description(self._model().describe())
