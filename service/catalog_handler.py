"""CatalogService: the storefront's item changes to the live catalog, and the catalog read back."""

from __future__ import annotations

import math

import grpc

from models.errors import FieldError
from models.recommend.catalog import ItemChange
from service import limits
from service.errors import RpcFailure, rpc
from service.live_catalog import LiveRecommender
from service.pb.shifu.v1 import catalog_pb2 as pb
from service.pb.shifu.v1 import catalog_pb2_grpc


def to_change(item: pb.CatalogItem, where: str) -> ItemChange:
    price = limits.amount(item.price, f"{where}.price") if item.HasField("price") else None
    if item.HasField("category") and not item.category:
        raise FieldError(f"{where}.category", "must not be empty")
    return ItemChange(
        item_id=limits.text(item.item_id, f"{where}.item_id", required=True),
        title=limits.text(item.title, f"{where}.title") if item.HasField("title") else None,
        category=limits.text(item.category, f"{where}.category") if item.HasField("category") else None,
        brand=limits.text(item.brand, f"{where}.brand") if item.HasField("brand") else None,
        price=price,
        in_stock=item.in_stock if item.HasField("in_stock") else None,
        tags=limits.texts(item.tags.values, f"{where}.tags.values", limits.MAX_TAGS)
        if item.HasField("tags")
        else None,
    )


def to_ids(ids: list[str], field: str) -> tuple[str, ...]:
    limits.batch(len(ids), field)
    return limits.texts(ids, field, limits.MAX_BATCH)


class CatalogHandler(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, live: LiveRecommender) -> None:
        self._live = live

    def _known(self) -> set[str]:
        """Items the catalog has now: the serving version's and those added since (not deleted)."""
        model = self._live.current()
        if model is None:
            return {i for i, c in self._live.changes().items() if c.category and not c.deleted}
        return set(model.catalog.ids[model.catalog.live()].tolist())

    @rpc
    def UpsertItems(
        self, request: pb.UpsertItemsRequest, context: grpc.ServicerContext
    ) -> pb.UpsertItemsResponse:
        limits.batch(len(request.items), "items")
        changes = [to_change(item, f"items[{i}]") for i, item in enumerate(request.items)]
        first: dict[str, int] = {}
        for i, change in enumerate(changes):
            if first.setdefault(change.item_id, i) != i:
                raise FieldError(
                    f"items[{i}].item_id", f"{change.item_id!r} is also items[{first[change.item_id]}]"
                )
        known = self._known()
        model = self._live.current()
        trained = set(model.catalog.ids[: model.catalog.n_trained].tolist()) if model else set()
        for i, change in enumerate(changes):
            if change.item_id not in known and change.item_id not in trained and change.category is None:
                raise FieldError(
                    f"items[{i}].category",
                    f"required for {change.item_id!r}, an item the catalog does not have",
                )
        version = self._live.apply(changes)
        added = sum(change.item_id not in known for change in changes)
        return pb.UpsertItemsResponse(added=added, updated=len(changes) - added, catalog_version=version)

    @rpc
    def DeleteItems(
        self, request: pb.DeleteItemsRequest, context: grpc.ServicerContext
    ) -> pb.DeleteItemsResponse:
        ids = list(dict.fromkeys(to_ids(list(request.item_ids), "item_ids")))
        known = self._known()
        present = [i for i in ids if i in known]
        version = (
            self._live.apply([ItemChange(i, deleted=True) for i in present])
            if present
            else self._live.store.version()
        )
        return pb.DeleteItemsResponse(
            deleted=len(present), unknown_item_ids=[i for i in ids if i not in known], catalog_version=version
        )

    @rpc
    def GetItems(self, request: pb.GetItemsRequest, context: grpc.ServicerContext) -> pb.GetItemsResponse:
        ids = to_ids(list(request.item_ids), "item_ids")
        model = self._live.current()
        if model is None:
            raise RpcFailure(grpc.StatusCode.UNAVAILABLE, "no model version loaded yet")
        items, missing = [], []
        for item_id in ids:
            index = model.find(item_id)
            if index is None or model.catalog.deleted[index]:
                missing.append(item_id)
                continue
            item = model.catalog.item(index)
            message = pb.Item(
                item_id=item.item_id,
                title=item.title,
                category=item.category,
                brand=item.brand,
                in_stock=item.in_stock,
                tags=item.tags,
                trained=item.trained,
            )
            if not math.isnan(item.price):
                message.price = item.price
            items.append(message)
        return pb.GetItemsResponse(
            items=items,
            missing_item_ids=missing,
            model_version=model.version,
            catalog_version=self._live.store.version(),
        )
