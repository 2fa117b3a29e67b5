"""Command-line flags derived from a dataclass's fields, so that each setting is declared once: its name,
type and default in the dataclass, its flag (`--field-name`) here."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

_SCALARS: dict[Any, Callable[[str], Any]] = {int: int, float: float, str: str, Path: Path}


def _scalar(kind: Any) -> tuple[Callable[[str], Any] | None, bool]:
    """(parser of one value, whether None is allowed) for a field type, or (None, _) if not a scalar."""
    optional = False
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(kind) if a is not type(None)]
        optional = len(members) < len(typing.get_args(kind))
        kind = members[0] if len(members) == 1 else None
    return _SCALARS.get(kind), optional


_TRUE, _FALSE = ("1", "true", "yes", "on", ""), ("0", "false", "no", "off")


def parse_text(config_type: type, name: str, text: str) -> Any:
    """One field's value from text (an environment variable), by the field's type; ValueError if it
    does not parse."""
    kind = typing.get_type_hints(config_type)[name]
    if kind is bool:
        lowered = text.strip().lower()
        if lowered not in _TRUE + _FALSE:
            raise ValueError("not a boolean")
        return lowered in _TRUE
    parse, optional = _scalar(kind)
    if parse is None:
        raise TypeError(f"{config_type.__name__}.{name}: no text form for type {kind}")
    return None if optional and not text else parse(text)


def add_flags(
    parser: argparse.ArgumentParser,
    config_type: type,
    skip: Collection[str] = (),
    describe: Callable[[dataclasses.Field], str] = lambda f: "",
    prefix: str = "",
) -> None:
    """One flag per field of `config_type` (bools as switches, tuples as lists), named
    --PREFIX-FIELD-NAME, each defaulting to None so that `values` can tell what the command line set."""
    hints = typing.get_type_hints(config_type)
    for f in dataclasses.fields(config_type):
        if f.name in skip:
            continue
        kind = hints[f.name]
        dest = f"{prefix}_{f.name}" if prefix else f.name
        flag = "--" + dest.replace("_", "-")
        default = f.default
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        text = " ".join(part for part in (describe(f), f"(default {default})") if part)
        if kind is bool:
            parser.add_argument(flag, dest=dest, action="store_const", const=True, default=None, help=text)
        elif typing.get_origin(kind) is tuple:
            (element, _ellipsis) = typing.get_args(kind)
            parser.add_argument(flag, dest=dest, type=_SCALARS[element], nargs="+", default=None, help=text)
        else:
            parse, _ = _scalar(kind)
            if parse is None:
                raise TypeError(f"{config_type.__name__}.{f.name}: no flag for type {kind}; skip it")
            parser.add_argument(flag, dest=dest, type=parse, default=None, help=text)


def values(config_type: type, args: argparse.Namespace, prefix: str = "") -> dict[str, Any]:
    """The fields of `config_type` that the command line set (tuples as tuples)."""
    found = {}
    for f in dataclasses.fields(config_type):
        value = getattr(args, f"{prefix}_{f.name}" if prefix else f.name, None)
        if value is not None:
            found[f.name] = tuple(value) if isinstance(value, list) else value
    return found
