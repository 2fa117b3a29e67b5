"""Request files for the command-line client: JSON, JSON lists and JSON Lines into request messages, with
errors that name the file, line and field (`day.json: jobs[0].timeWindow.start: ...`) where protobuf's
own parser names a chain of fields and, for a malformed time, only the part of it before the `T`."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from service.limits import MAX_BATCH
from service.pb.shifu.v1 import catalog_pb2

M = TypeVar("M", bound=Message)
BATCH = MAX_BATCH
JSON_LINES = (".jsonl", ".ndjson")
TIME_EXAMPLE = "2026-11-02T10:00:00+08:00"
# What get-items prints besides its items: skipped, so that its output can be sent back as it is.
GET_ITEMS_EXTRAS = frozenset(
    name
    for field in catalog_pb2.GetItemsResponse.DESCRIPTOR.fields
    if field.name != "items"
    for name in (field.name, field.camelcase_name)
)
INTEGERS = (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64)


class FieldProblem(ValueError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)


def _leaf(value: Any, message: Message, path: str) -> None:
    try:
        json_format.ParseDict(value, message)
    except json_format.ParseError as error:
        if message.DESCRIPTOR.full_name == "google.protobuf.Timestamp":
            raise FieldProblem(path, f"{value!r} is not an RFC 3339 time, e.g. {TIME_EXAMPLE}") from None
        reason = re.sub(r"^(Failed to parse \w+ field: )+", "", str(error))
        raise FieldProblem(path, re.sub(r"\s+at \S+\.?$", "", reason)) from None


def parse_into(value: Any, message: Message, path: str = "") -> None:
    """json_format.ParseDict, field by field, so that an error names the JSON path of its value."""
    descriptor = message.DESCRIPTOR
    if descriptor.full_name.startswith("google.protobuf."):
        _leaf(value, message, path)
        return
    if not isinstance(value, dict):
        raise FieldProblem(path, f"expected a JSON object ({descriptor.name}), got {json.dumps(value)[:60]}")
    by_json_name = {field.camelcase_name: field for field in descriptor.fields_by_name.values()}
    for key, item in value.items():
        field = by_json_name.get(key) or descriptor.fields_by_name.get(key)
        where = f"{path}.{key}" if path else key
        if field is None:
            known = ", ".join(by_json_name)
            raise FieldProblem(path, f"{descriptor.name} has no field {key!r} (its fields: {known})")
        if field.message_type is None or field.message_type.GetOptions().map_entry or item is None:
            _leaf({key: item}, message, where)
        elif field.is_repeated:
            if not isinstance(item, list):
                raise FieldProblem(where, f"expected a list, got {json.dumps(item)[:60]}")
            for i, element in enumerate(item):
                parse_into(element, getattr(message, field.name).add(), f"{where}[{i}]")
        else:
            sub = getattr(message, field.name)
            sub.SetInParent()  # present even when empty: `"tags": {}` clears an item's tags
            parse_into(item, sub, where)


def _text(path: Path) -> tuple[str, str]:
    if str(path) == "-":
        return sys.stdin.read(), "stdin"
    return path.read_text(), str(path)


def _json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{source}: not JSON: {error}") from None


def read_request(path: Path, request_type: type[M]) -> M:
    """A request message from a JSON file of it."""
    text, source = _text(path)
    request = request_type()
    try:
        parse_into(_json(text, source), request)
    except FieldProblem as problem:
        raise ValueError(f"{source}: {problem}") from None
    return request


def _lines(text: str, source: str) -> list[tuple[str, str, Any]]:
    return [
        (f"{source} line {n}", "", _json(line, f"{source} line {n}"))
        for n, line in enumerate(text.splitlines(), 1)
        if line.strip()
    ]


def _entries(path: Path, field: FieldDescriptor) -> list[tuple[str, str, Any]]:
    """(where, JSON path, value) of each entry of a file: a request object, a list, or JSON Lines."""
    text, source = _text(path)
    if path.suffix in JSON_LINES:
        return _lines(text, source)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        if error.msg == "Extra data":  # a value after the first: JSON Lines whatever the file's name
            return _lines(text, source)
        raise ValueError(f"{source}: not JSON: {error}") from None
    if isinstance(value, list):
        return [(source, f"[{i}]", entry) for i, entry in enumerate(value)]
    if not isinstance(value, dict):
        raise ValueError(f"{source}: expected a request object, a list or JSON Lines")
    # An id list also takes get-items' output: `delete-items --request` what get-items printed.
    keys = {field.name, field.camelcase_name} | ({"items"} if field.message_type is None else set())
    entries = []
    for key, found in value.items():
        if key in GET_ITEMS_EXTRAS and field.containing_type.file is catalog_pb2.DESCRIPTOR:
            continue
        if key not in keys:
            raise ValueError(
                f"{source}: {field.containing_type.name} has no field {key!r} ({field.camelcase_name})"
            )
        if not isinstance(found, list):
            raise ValueError(f"{source}: {key}: expected a list")
        entries += [(source, f"{key}[{i}]", entry) for i, entry in enumerate(found)]
    return entries


def _item_id(entry: Any, path: str) -> str:
    if isinstance(entry, dict):
        entry = entry.get("itemId", entry.get("item_id"))
    if not isinstance(entry, str):
        raise FieldProblem(path, "expected an item id: a string, or an object with itemId")
    return entry


def _catalog_item(entry: Any) -> Any:
    """An item as get-items prints it, as UpsertItems takes it: tags a list or {"values": [...]}, and
    `trained` (which the service decides) left out."""
    if not isinstance(entry, dict):
        return entry
    item = {key: value for key, value in entry.items() if key != "trained"}
    if isinstance(item.get("tags"), list):
        item["tags"] = {"values": item["tags"]}
    return item


def _add(request: Message, field: FieldDescriptor, path: str, entry: Any) -> None:
    entries = getattr(request, field.name)
    if field.message_type is None:
        entries.append(_item_id(entry, path))
    elif field.message_type is catalog_pb2.CatalogItem.DESCRIPTOR:
        parse_into(_catalog_item(entry), entries.add(), path)
    else:
        parse_into(entry, entries.add(), path)


def read_batches(path: Path | None, request_type: type[M], item_ids: list[str]) -> list[M]:
    """The requests to send for `item_ids` and the entries of the file at `path`, BATCH entries each."""
    (field,) = request_type.DESCRIPTOR.fields  # each of these requests is one list
    found = [("--item", "", item_id) for item_id in item_ids]
    found += _entries(path, field) if path is not None else []
    if not found:
        raise ValueError(f"nothing to send: no {field.camelcase_name} in {path or 'the arguments (--item)'}")
    requests = []
    for start in range(0, len(found), BATCH):
        request = request_type()
        for where, json_path, entry in found[start : start + BATCH]:
            try:
                _add(request, field, json_path, entry)
            except FieldProblem as problem:
                raise ValueError(f"{where}: {problem}") from None
        requests.append(request)
    return requests


def add_up(total: M, part: M) -> M:
    """The answer to a request sent in batches: counts summed, lists joined, and the later batch's
    versions (`catalog_version`) and strings (`model_version`)."""
    counts = {
        field.name: getattr(total, field.name) + getattr(part, field.name)
        for field in total.DESCRIPTOR.fields_by_name.values()
        if field.cpp_type in INTEGERS and not field.is_repeated and not field.name.endswith("_version")
    }
    total.MergeFrom(part)
    for name, count in counts.items():
        setattr(total, name, count)
    return total
