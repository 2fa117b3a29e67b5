"""The running experiments (models/experiments.py) and the model each arm answers with.

The file is re-read within RECHECK_SECONDS of a change; a file that became invalid (a bad key, an
unknown version or component) leaves the running experiments as they were and is logged. The model
versions arms name are loaded once, side by side with the promoted one, and kept while an experiment
names them. An arm's model is the promoted version's live view itself when the arm changes nothing (a
control), else a Recommender over the same artifact (no array copied) with the arm's components and
rules, over the live catalog; it is rebuilt when the live view changes (a new version, catalog changes).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models import experiments, versions
from models.experiments import Arm, Experiment, Experiments, ExperimentsError
from models.recommend.artifact import FORMAT, RecommenderArtifact
from models.recommend.recommender import Recommender
from models.recommend.touchpoints import TouchpointRules
from service import metrics
from service.live_catalog import LiveRecommender
from service.watcher import Watcher

log = logging.getLogger(__name__)
RECHECK_SECONDS = 0.5  # how often the file's modification time is looked at


@dataclass(frozen=True)
class Assignment:
    experiment: Experiment
    arm: Arm
    model: Recommender


def restricted(artifact: RecommenderArtifact, components: tuple[str, ...]) -> RecommenderArtifact:
    """The artifact blending only `components`: their fitted weights renormalised (equal weights when
    the blend gave them none; none of them in the version: the blend's fallback, popularity, alone).
    Every array but the two small weight vectors is shared, not copied."""
    chosen = np.array([name in components for name in artifact.components], dtype=np.float64)

    def weights(fitted: np.ndarray) -> np.ndarray:
        kept = chosen * fitted
        if kept.sum() > 0:
            return kept / kept.sum()
        return chosen / chosen.sum() if chosen.sum() > 0 else chosen

    return dataclasses.replace(
        artifact,
        blend_weights=weights(artifact.blend_weights),
        blend_visitor_weights=weights(artifact.blend_visitor_weights),
    )


def arm_rules(rules: TouchpointRules, touchpoint: str, arm: Arm) -> TouchpointRules:
    """The touchpoint rules with the arm's overrides of its touchpoint's rule."""
    rule = arm.rule(rules.for_touchpoint(touchpoint))
    return dataclasses.replace(rules, touchpoints={**rules.touchpoints, touchpoint: rule})


def load_version(version_dir: Path, rules: TouchpointRules) -> Recommender:
    """A version an arm names, verified like the promoted one but served whether promoted or not:
    trying a version out before promoting it is what an experiment is for."""
    manifest = versions.read_manifest(version_dir, verify=True, expected_format=FORMAT)
    return Recommender(RecommenderArtifact.load(version_dir), version_dir.name, rules, manifest)


class LiveExperiments:
    """The experiments of one file, and each arm's model. Thread-safe; one per process."""

    def __init__(self, path: Path, live: LiveRecommender, model_dir: Path, rules: TouchpointRules) -> None:
        self.path = path
        self._live = live
        self._model_dir = model_dir
        self._rules = rules
        self._lock = threading.Lock()  # one reload or arm build at a time; readers never take it
        self._stamp = self._stat()
        self._versions: dict[str, Recommender] = {}
        self._experiments = self._load()  # at start, a bad file is an error
        self._built: dict[tuple[str, str], tuple[Recommender, Recommender]] = {}  # arm -> (view, model)
        self._watcher = Watcher("experiments-watch", self.refresh)
        log.info("experiments: %d from %s", len(self._experiments.experiments), path)

    @property
    def experiments(self) -> Experiments:
        return self._experiments

    def _stat(self) -> tuple[int, int]:
        try:
            info = os.stat(self.path)
        except OSError as error:
            raise ExperimentsError(f"{self.path}: {error.strerror}") from None
        return info.st_mtime_ns, info.st_size

    def _load(self) -> Experiments:
        """Parses the file and loads the versions it names; ExperimentsError naming what is wrong."""
        found = experiments.load(self.path)
        named = {
            arm.version: (experiment, i)
            for experiment in found.experiments
            for i, arm in enumerate(experiment.arms)
            if arm.version
        }
        loaded = {version: self._version(version, *where) for version, where in named.items()}
        for experiment in found.experiments:
            for i, arm in enumerate(experiment.arms):
                self._check_components(experiment, i, loaded.get(arm.version) or self._live.current())
        self._versions = loaded
        metrics.EXPERIMENT_VERSIONS.set(len(loaded))
        return found

    def _version(self, version: str, experiment: Experiment, arm: int) -> Recommender:
        kept = self._versions.get(version)
        if kept is not None:
            return kept
        where = f"{self.path}: experiment.{experiment.name}.arms[{arm}].version"
        if version not in versions.list_versions(self._model_dir):
            raise ExperimentsError(f"{where}: {version!r} is not a version of {self._model_dir}")
        try:
            return load_version(self._model_dir / version, self._rules)
        except Exception as error:  # whatever a bad version does, the running experiments stay
            raise ExperimentsError(f"{where}: {version!r} does not load: {error}") from None

    def _check_components(self, experiment: Experiment, arm: int, model: Recommender | None) -> None:
        """The arm's components must be models of its version (the promoted one is checked when loaded)."""
        if model is None:
            return
        have = model.scorer.a.components
        for j, name in enumerate(experiment.arms[arm].components):
            if name not in have:
                raise ExperimentsError(
                    f"{self.path}: experiment.{experiment.name}.arms[{arm}].components[{j}]: version "
                    f"{model.version} has no model {name!r} (it has {', '.join(have)})"
                )

    def refresh(self) -> bool:
        """Re-reads the file when it changed, then builds the arms' models for the current live view.
        True if the experiments changed."""
        changed = False
        with self._lock:
            try:
                stamp = self._stat()
                if stamp != self._stamp:
                    self._experiments, self._stamp, changed = self._load(), stamp, True
                    self._built = {}
                    log.info("experiments: re-read %s, %d", self.path, len(self._experiments.experiments))
            except ExperimentsError as error:
                log.error("experiments: keeping the running experiments: %s", error)
        for experiment in self._experiments.experiments:
            for arm in experiment.arms:
                self._model(experiment, arm)
        return changed

    def assign(self, user_id: str, touchpoint: str) -> Assignment | None:
        """The experiment of the touchpoint, the user's arm and its model; None outside experiments (no
        experiment there, no user id to be sticky by, or no version loaded yet)."""
        experiment = self._experiments.for_touchpoint(touchpoint)
        if experiment is None or not user_id:
            return None
        arm = experiment.arm_of(user_id)
        model = self._model(experiment, arm)
        return None if model is None else Assignment(experiment, arm, model)

    def _model(self, experiment: Experiment, arm: Arm) -> Recommender | None:
        view = self._live.current()
        if view is None:
            return None
        if not (arm.version or arm.components or arm.rules):
            return view  # the promoted version as it serves
        built = self._built.get((experiment.name, arm.name))
        if built is not None and built[0] is view:
            return built[1]
        with self._lock:
            built = self._built.get((experiment.name, arm.name))
            if built is None or built[0] is not view:
                built = (view, self._build(experiment, arm, view))
                self._built[(experiment.name, arm.name)] = built
            return built[1]

    def _build(self, experiment: Experiment, arm: Arm, view: Recommender) -> Recommender:
        base = self._versions.get(arm.version, view)
        if base.version == view.version:
            catalog = view.catalog  # the live view's catalog: the same items in the same order
        else:
            changes = self._live.changes()
            catalog = base.catalog.with_changes(changes) if changes else base.catalog
        artifact = restricted(base.scorer.a, arm.components) if arm.components else base.scorer.a
        rules = arm_rules(base.rules, experiment.touchpoint, arm)
        return Recommender(artifact, base.version, rules, None, catalog)

    def start(self) -> None:
        self._watcher.start(RECHECK_SECONDS)

    def stop(self) -> None:
        self._watcher.stop()
