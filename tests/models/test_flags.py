"""Flags derived from dataclass fields: every field gets one, typed, and only what was given is set."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from models import flags


@dataclass(frozen=True)
class Example:
    count: int = 3
    rate: float = 0.5
    name: str = "x"
    where: Path = Path(".")
    cut: float | None = None
    switch: bool = False
    grid: tuple[float, ...] = (1.0, 2.0)
    table: dict[str, float] = field(default_factory=dict)


def parse(argv: list[str]) -> Example:
    parser = argparse.ArgumentParser()
    flags.add_flags(parser, Example, skip={"table"})
    return Example(**flags.values(Example, parser.parse_args(argv)))


def test_unset_flags_keep_the_dataclass_defaults() -> None:
    assert parse([]) == Example()


def test_every_field_has_a_typed_flag() -> None:
    got = parse(
        ["--count", "7", "--rate", "0.25", "--name", "y", "--where", "/tmp", "--cut", "1.5", "--switch",
         "--grid", "3", "4.5"]
    )  # fmt: skip
    assert got == Example(7, 0.25, "y", Path("/tmp"), 1.5, True, (3.0, 4.5))


def test_a_value_of_the_wrong_type_is_a_usage_error() -> None:
    with pytest.raises(SystemExit):
        parse(["--count", "many"])


def test_a_field_without_a_flag_type_must_be_skipped_explicitly() -> None:
    with pytest.raises(TypeError, match="table"):
        flags.add_flags(argparse.ArgumentParser(), Example)


def test_text_values_parse_by_the_field_type_as_environment_variables_do() -> None:
    assert flags.parse_text(Example, "count", "7") == 7
    assert flags.parse_text(Example, "where", "/tmp") == Path("/tmp")
    assert flags.parse_text(Example, "cut", "") is None and flags.parse_text(Example, "cut", "0.5") == 0.5
    assert (
        flags.parse_text(Example, "switch", "yes") is True
        and flags.parse_text(Example, "switch", "0") is False
    )
    for field_name, text in (("count", "many"), ("switch", "maybe")):
        with pytest.raises(ValueError):
            flags.parse_text(Example, field_name, text)
