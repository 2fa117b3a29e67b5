"""Experiments per touchpoint, read from a TOML file: the service answers each user of an experiment's
touchpoint from one of its arms, and training's analysis reads the same file to compare the arms.

    [experiment.home_feed_new_blend]
    touchpoint = "home_feed"
    primary_metric = "ctr"          # or "conversion", "revenue_per_impression"
    horizon_days = 14               # optional: a fixed horizon
    min_users_per_arm = 2000        # optional
    [[experiment.home_feed_new_blend.arms]]
    name = "control"                # the first arm is the control
    weight = 1
    [[experiment.home_feed_new_blend.arms]]
    name = "candidate"
    weight = 1
    version = "20261201T..."        # optional: a model version of the model directory (default: promoted)
    components = ["ease", "als"]    # optional: blend only these models of the version
    max_per_category = 2            # optional: any key of the touchpoint's rules (touchpoints.py)

A user's arm is a stable hash of (experiment name, user id) split by the arms' weights: the same in
every process and after every restart, and independent across experiments. Whether a named version
exists and has the named components is checked by the service, which has the model directory.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from models.recommend import touchpoints
from models.recommend.components import NAMES
from models.recommend.touchpoints import TouchpointConfigError, TouchpointRule

PRIMARY_METRICS = ("ctr", "conversion", "revenue_per_impression")
_EXPERIMENT_KEYS = ("touchpoint", "arms", "primary_metric", "horizon_days", "min_users_per_arm")
_ARM_KEYS = ("name", "weight", "version", "components")
_RULE_KEYS = tuple(f.name for f in fields(TouchpointRule))


class ExperimentsError(ValueError):
    """The experiments file is unreadable or names something wrong; the message says where."""


@dataclass(frozen=True)
class Arm:
    name: str
    weight: float
    version: str = ""  # "": the promoted version
    components: tuple[str, ...] = ()  # (): every component of the version, as its blend weighs them
    # Overrides of the touchpoint's rule: (a field of TouchpointRule, its value), sorted by field.
    rules: tuple[tuple[str, Any], ...] = ()

    def rule(self, base: TouchpointRule) -> TouchpointRule:
        """The touchpoint's rule with this arm's overrides."""
        return replace(base, **dict(self.rules)) if self.rules else base


@dataclass(frozen=True)
class Experiment:
    name: str
    touchpoint: str
    arms: tuple[Arm, ...]  # the first is the control
    primary_metric: str = "ctr"
    horizon_days: int | None = None
    min_users_per_arm: int | None = None

    def arm_of(self, user_id: str) -> Arm:
        """The user's arm: sticky, and independent of the user's arm in any other experiment."""
        point = unit_hash(self.name, user_id) * sum(arm.weight for arm in self.arms)
        for arm in self.arms:
            point -= arm.weight
            if point < 0:
                return arm
        return self.arms[-1]  # rounding at the very top of [0, 1)

    @property
    def control(self) -> Arm:
        return self.arms[0]


@dataclass(frozen=True)
class Experiments:
    experiments: tuple[Experiment, ...] = ()

    def for_touchpoint(self, touchpoint: str) -> Experiment | None:
        """The experiment running on a touchpoint (at most one), matched ignoring case."""
        wanted = touchpoint.lower()
        return next((e for e in self.experiments if e.touchpoint.lower() == wanted), None)

    def by_name(self, name: str) -> Experiment | None:
        return next((e for e in self.experiments if e.name == name), None)


def unit_hash(experiment: str, user_id: str) -> float:
    """A stable point of [0, 1) for (experiment, user): BLAKE2b of the UTF-8 bytes, never Python's
    hash(), which differs from process to process."""
    digest = hashlib.blake2b(f"{experiment}\x00{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _arm(table: Any, where: str) -> Arm:
    if not isinstance(table, dict):
        raise ExperimentsError(f"{where}: must be a table ([[...arms]])")
    unknown = sorted(set(table) - set(_ARM_KEYS) - set(_RULE_KEYS))
    if unknown:
        raise ExperimentsError(
            f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join((*_ARM_KEYS, *_RULE_KEYS))})"
        )
    name, weight = table.get("name"), table.get("weight", 1)
    if not isinstance(name, str) or not name:
        raise ExperimentsError(f"{where}.name: every arm needs a name (a non-empty string)")
    if (
        isinstance(weight, bool)
        or not isinstance(weight, int | float)
        or not (math.isfinite(weight) and weight > 0)
    ):
        raise ExperimentsError(f"{where}.weight: must be a number > 0, got {weight!r}")
    version = table.get("version", "")
    if not isinstance(version, str):
        raise ExperimentsError(f"{where}.version: must be a string (a version of the model directory)")
    components = table.get("components", [])
    if not isinstance(components, list) or (not components and "components" in table):
        raise ExperimentsError(f"{where}.components: must be a non-empty list of model names")
    for i, component in enumerate(components):
        if component not in NAMES:
            raise ExperimentsError(
                f"{where}.components[{i}]: unknown model {component!r} (known: {', '.join(NAMES)})"
            )
    overrides = sorted(key for key in table if key in _RULE_KEYS)
    try:  # checked as the touchpoint file's rules are, with their messages
        parsed = touchpoints.parse({"default": {key: table[key] for key in overrides}}).default
    except TouchpointConfigError as error:
        raise ExperimentsError(str(error).replace("default", where, 1)) from None
    rules = tuple((key, getattr(parsed, key)) for key in overrides)
    return Arm(name, float(weight), version, tuple(dict.fromkeys(components)), rules)


def _optional_count(table: dict[str, Any], key: str, where: str) -> int | None:
    value = table.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ExperimentsError(f"{where}.{key}: must be a whole number >= 1, got {value!r}")
    return value


def _experiment(name: str, table: Any, where: str) -> Experiment:
    if not isinstance(table, dict):
        raise ExperimentsError(f"{where}: must be a table")
    unknown = sorted(set(table) - set(_EXPERIMENT_KEYS))
    if unknown:
        raise ExperimentsError(
            f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(_EXPERIMENT_KEYS)})"
        )
    touchpoint = table.get("touchpoint")
    if not isinstance(touchpoint, str) or not touchpoint:
        raise ExperimentsError(f"{where}.touchpoint: must be a non-empty string")
    metric = table.get("primary_metric", "ctr")
    if metric not in PRIMARY_METRICS:
        raise ExperimentsError(
            f"{where}.primary_metric: must be one of {', '.join(PRIMARY_METRICS)}, got {metric!r}"
        )
    tables = table.get("arms")
    if not isinstance(tables, list) or len(tables) < 2:
        raise ExperimentsError(
            f"{where}.arms: needs at least two arms ([[{where}.arms]]), the first the control"
        )
    arms: list[Arm] = []
    for i, entry in enumerate(tables):
        arm = _arm(entry, f"{where}.arms[{i}]")
        if any(a.name == arm.name for a in arms):
            raise ExperimentsError(f"{where}.arms[{i}].name: {arm.name!r} appears twice")
        arms.append(arm)
    return Experiment(
        name,
        touchpoint,
        tuple(arms),
        metric,
        _optional_count(table, "horizon_days", where),
        _optional_count(table, "min_users_per_arm", where),
    )


def parse(document: dict[str, Any], where: str) -> Experiments:
    """The experiments of a TOML document; `where` (the file's path) begins every error's message."""
    unknown = sorted(set(document) - {"experiment"})
    if unknown:
        raise ExperimentsError(f"{where}: unknown table(s) {', '.join(unknown)}; use [experiment.NAME]")
    tables = document.get("experiment", {})
    if not isinstance(tables, dict):
        raise ExperimentsError(f"{where}: experiment must be tables [experiment.NAME]")
    experiments: list[Experiment] = []
    for name, table in tables.items():
        experiment = _experiment(name, table, f"{where}: experiment.{name}")
        clash = next((e for e in experiments if e.touchpoint.lower() == experiment.touchpoint.lower()), None)
        if clash is not None:
            raise ExperimentsError(
                f"{where}: experiment.{name}.touchpoint: {experiment.touchpoint!r} already has experiment "
                f"{clash.name!r} (one experiment per touchpoint at a time)"
            )
        experiments.append(experiment)
    return Experiments(tuple(experiments))


def load(path: Path) -> Experiments:
    """The experiments of a file; ExperimentsError naming the file and the key path when it is wrong."""
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ExperimentsError(f"{path}: {error}") from None
    return parse(document, str(path))
