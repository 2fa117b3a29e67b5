"""The recommender training job: logs in, an evaluated and (when good enough) promoted version out.

0. Read, check and split the event log in the SQL engine (training/event_store.py); each fitting below
   takes its aggregates from there, so the log itself never has to fit in memory.
1. Hold out each user's latest positive events (test); hold out the latest of the rest again
   (validation). Fit every model on what is left, pick each model's parameters (EASE's λ and recency
   half-life: the widest-reaching within the coverage tradeoff of the best) and the blend on validation.
2. Refit on everything but the test set and measure every model and the blend on it.
3. Refit on everything and publish. The version is promoted only if its test NDCG@k is not below the
   current promoted version's (unless forced), so a bad retrain cannot reach the storefront by accident.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from models import versions
from models.recommend import retrieval
from models.recommend.artifact import FORMAT, RecommenderArtifact
from models.recommend.component import Component
from models.recommend.components import COMPONENTS, FALLBACK
from models.recommend.components.als import Als
from models.recommend.recommender import Recommender
from training import blend, components, dataset, engines, evaluate
from training.components import ModelConfig
from training.event_store import EventStore, Part
from training.readers import ReadReport, input_files, read_items, read_users
from training.touchpoint_report import touchpoint_report

log = logging.getLogger(__name__)
TOUCHPOINT_REPORT = "touchpoint_report.csv"


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    holdout_fraction: float = 0.2
    k: int = 10
    coverage_tradeoff: float = 0.02  # NDCG@k the blend may give up (relative) for catalog coverage
    force_promote: bool = False
    engine: str = "duckdb"  # where the event log is read and aggregated: duckdb or spark
    master: str = "local[2]"  # Spark's master URL (engine spark)
    engine_memory_gb: float = 4.0  # the engine's memory (DuckDB spills to disk beyond it)
    # Where ALS is fitted: "implicit" (on this machine, from the aggregates) or "mllib" (Spark MLlib, in
    # the engine: for a user × item matrix that does not fit one machine; needs --engine spark).
    als_engine: str = "implicit"

    def __post_init__(self) -> None:
        if not 0 < self.holdout_fraction < 1:
            raise ValueError("holdout fraction must be between 0 and 1")
        if self.engine not in engines.ENGINES:
            raise ValueError(f"engine must be one of {', '.join(engines.ENGINES)}, got {self.engine!r}")
        if self.engine_memory_gb <= 0:
            raise ValueError("engine memory must be > 0 GB")
        if self.als_engine not in ("implicit", "mllib"):
            raise ValueError(f"ALS engine must be implicit or mllib, got {self.als_engine!r}")
        if self.als_engine == "mllib" and self.engine != "spark":
            raise ValueError("--als-engine mllib needs --engine spark")
        weights = self.model.event_weights
        for name in (self.model.session_event, self.model.positive_event):
            if name not in weights:
                raise ValueError(f"event type {name!r} has no weight")


@dataclass(frozen=True)
class TrainResult:
    version_dir: Path
    reports: list[ReadReport]
    metrics: dict[str, Any]
    promoted: bool


def fingerprint(paths: list[Path]) -> str:
    digest = hashlib.sha256()

    for path in paths:
        for file in input_files(path):
            digest.update(versions.sha256_file(file).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Fitted:
    """Every component fitted on one dataset, before blending."""

    data: dataset.TrainingData
    components: dict[str, Component]


class _Trainer:
    def __init__(
        self, store: EventStore, items: pd.DataFrame, users: pd.DataFrame | None, config: TrainConfig
    ) -> None:
        self.store, self.items, self.users, self.config = store, items, users, config
        self.model = config.model
        self.cities: dict[str, str] = {}
        if users is not None and "city" in users.columns:
            self.cities = dict(zip(users["user_id"], users["city"], strict=True))

    def dataset(self, part: Part) -> dataset.TrainingData:
        m = self.model
        cities = pd.DataFrame({"user_id": list(self.cities), "city": list(self.cities.values())})
        aggregates = self.store.aggregates(part, m.half_life_days, m.positive_weight, cities)
        return dataset.build(aggregates, self.items, self.users, max(m.event_weights.values()))

    def fit(self, part: Part, chosen: dict[str, Any]) -> Fitted:
        data = self.dataset(part)
        if self.config.als_engine == "implicit":
            return Fitted(data, components.fit_all(data, self.model, chosen))
        fitted = components.fit_all(data, self.model, chosen, skip={"als"})
        started = time.perf_counter()
        m = self.model
        params = chosen.get("als") or Als.candidates(m.params_of("als"))[0]
        als = self.store.engine_als(part, m.half_life_days, params, m.seed)
        log.info("fitted als in Spark MLlib on %d users × %d items in %.1f s", *data.confidence.shape,
                 time.perf_counter() - started)  # fmt: skip
        return Fitted(data, {"als": als, **fitted})

    def artifact(self, fitted: Fitted, chosen: blend.Blend) -> RecommenderArtifact:
        return components.artifact(
            fitted.data, self.items, self.model, fitted.components, chosen.weights, chosen.novelty,
            chosen.visitor_weights,
        )  # fmt: skip

    def recommender(self, fitted: Fitted, chosen: blend.Blend) -> Recommender:
        return Recommender(self.artifact(fitted, chosen), "evaluation")

    def queries(self, part: Part) -> tuple[list[evaluate.EvalQuery], list[evaluate.EvalQuery]]:
        """(queries of known users, the same queries asked by visitors) against models fitted on `part`."""
        rows = self.store.test_rows(part)
        known = evaluate.queries(rows.relevant)
        return known, evaluate.visitor_queries(known, rows.sessions, self.cities)

    def _candidates(
        self,
        component: type[Component],
        candidates: list[Any],
        fitted: Fitted,
        validation: list[evaluate.EvalQuery],
    ) -> list[tuple[float, float, Any, Component]]:
        """(validation NDCG@k, coverage, params, model) of each candidate alone; candidates differing in
        how a model scores only (Component.fit_key) share one fit."""
        fits: dict[Any, Component | None] = {}
        tried = []
        for params in candidates:
            key = component.fit_key(params)
            if key not in fits:
                fits[key] = components.fit_one(component, fitted.data, params, self.model.seed)
            base = fits[key]
            if base is None:
                continue
            model = base.rescored(params)
            alone = Fitted(fitted.data, {**fitted.components, component.name: model})
            result = evaluate.evaluate(
                self.recommender(alone, blend.Blend.only(component.name)), validation, self.config.k
            )
            tried.append((result["overall"]["ndcg"], result["overall"]["coverage"], params, model))
        return tried

    def tune(self) -> tuple[blend.Blend, dict[str, Any], dict[str, Any]]:
        """The blend, and each component's parameters where it offers candidates, chosen on the
        validation split."""
        validation, visitors = self.queries(Part.VALIDATION_TRAIN)
        if not validation:
            raise ValueError("no validation queries: too few users with two or more positive events")
        k = self.config.k
        fitted = self.fit(Part.VALIDATION_TRAIN, {})
        chosen: dict[str, Any] = {}
        candidate_ndcg: dict[str, list[dict[str, Any]]] = {}
        for component in COMPONENTS:
            candidates = component.candidates(self.model.params_of(component.name))
            if len(candidates) < 2 or component.name not in fitted.components:
                continue
            if component.name == "als" and self.config.als_engine != "implicit":
                continue  # fitted in the engine: its first candidate (--als-recency-half-lives)
            tried = self._candidates(component, candidates, fitted, validation)
            _, _, best_params, best_model = _widest(tried, self.config.coverage_tradeoff)
            chosen[component.name] = best_params
            fitted.components[component.name] = best_model
            candidate_ndcg[component.name] = [
                {"params": asdict(p), "ndcg": n, "coverage": c} for n, c, p, _ in tried
            ]
        scorer = self.recommender(fitted, blend.Blend.only(FALLBACK))
        fitted_blend = blend.fit(
            scorer,
            validation,
            visitors,
            k,
            set(fitted.components),
            self.model.seed,
            self.config.coverage_tradeoff,
        )
        tuning = {
            "validation_queries": len(validation),
            "validation_ndcg": fitted_blend.ndcg,
            "validation_coverage": fitted_blend.coverage,
            "validation_visitor_ndcg": fitted_blend.visitor_ndcg,
            "candidates": candidate_ndcg,
        }
        return fitted_blend, chosen, tuning

    def measure(self, chosen: blend.Blend, params: dict[str, Any]) -> dict[str, Any]:
        """Every component alone and the blend, on the test split."""
        test, visitors = self.queries(Part.TEST_TRAIN)
        fitted = self.fit(Part.TEST_TRAIN, params)
        served = self.recommender(fitted, chosen)
        results = {"blend": evaluate.evaluate(served, test, self.config.k)}
        for name in fitted.components:
            alone = self.recommender(fitted, blend.Blend.only(name))
            results[name] = evaluate.evaluate(alone, test, self.config.k, component=name)
        if visitors:
            results["visitor blend"] = evaluate.evaluate(served, visitors, self.config.k)
            popular = self.recommender(fitted, blend.Blend.only(FALLBACK))
            results["visitor pop."] = evaluate.evaluate(popular, visitors, self.config.k, component=FALLBACK)
        return results


def _widest(tried: list[tuple[float, float, Any, Any]], tradeoff: float) -> tuple[float, float, Any, Any]:
    """Of (NDCG@k, coverage, ...) candidates, the one covering the most of the catalog within
    `tradeoff` of the best NDCG@k: the blend's novelty buys reach at the same price (training/blend.py),
    and a component that already reaches further leaves it less to buy."""
    best = max(ndcg for ndcg, *_ in tried)
    return max((t for t in tried if t[0] >= (1 - tradeoff) * best), key=lambda t: (t[1], t[0]))


def metrics_table(metrics: dict[str, Any], k: int) -> str:
    lines = [f"{'model':<14}{'P@' + str(k):>8}{'R@' + str(k):>8}{'NDCG@' + str(k):>9}{'MAP@' + str(k):>8}"
             f"{'coverage':>10}{'personal.':>11}{'queries':>9}"]  # fmt: skip
    for name, result in metrics.items():
        o = result["overall"]
        personal = o.get("personalisation", float("nan"))
        lines.append(f"{name:<14}{o['precision']:>8.4f}{o['recall']:>8.4f}{o['ndcg']:>9.4f}{o['map']:>8.4f}"
                     f"{o['coverage']:>10.3f}{personal:>11.3f}{o['queries']:>9}")  # fmt: skip
    for group in ("per_scene", "per_touchpoint"):
        for model in ("blend", FALLBACK):
            rows = metrics.get(model, {}).get(group, {})
            if len(rows) > 1 or (rows and "(none)" not in rows):
                lines.append(f"{model} NDCG@{k} {group.replace('_', ' ')}: " + ", ".join(
                    f"{name} {r['ndcg']:.4f} ({r['queries']})" for name, r in rows.items()))  # fmt: skip
    lines.append("personal.: 1 − mean overlap of two users' top lists (0: everyone gets the same list)")
    return "\n".join(lines)


def relations_line(relations: dict[str, float], k: int) -> str:
    """The share of substitutes of the item's kind (and the item-to-item models' alone, for comparison)."""
    shares = ", ".join(f"{name} {value:.1%}" for name, value in relations.items() if name != "anchors")
    return f"{shares} (top {k} of {relations['anchors']:.0f} items)"


def _current_ndcg(out_dir: Path) -> tuple[str, float] | None:
    for name in reversed(versions.list_versions(out_dir)):
        try:
            manifest = versions.read_manifest(out_dir / name, verify=False)
        except versions.VersionError:
            continue
        if manifest.get("promoted"):
            return name, float(manifest["metrics"]["blend"]["overall"]["ndcg"])
    return None


def train(
    events_path: Path, items_path: Path, users_path: Path | None, out_dir: Path, config: TrainConfig
) -> TrainResult:
    items, items_report = read_items(items_path)
    users = None
    reports = [items_report]
    if users_path is not None:
        users, users_report = read_users(users_path)
        reports.append(users_report)
    if len(items) < config.k:
        raise ValueError(
            f"the catalog has {len(items)} item(s); measuring the top {config.k} needs at least {config.k} "
            f"(add items, or lower --k)"
        )
    m = config.model
    started = time.perf_counter()
    with engines.opened(config.engine, config.engine_memory_gb, config.master) as engine:
        store = EventStore(engine, m.event_weights, items["item_id"].to_numpy().astype(str))
        reports.insert(1, store.load(events_path))
        for report in reports:
            log.info("%s", report.summary())
        if reports[1].rows_kept == 0:
            raise ValueError("no events left to learn from")
        store.split(m.positive_weight, config.holdout_fraction)
        n_events = store.count()
        log.info("events read, checked and split in %s in %.0f s", engine.name, time.perf_counter() - started)
        trainer = _Trainer(store, items, users, config)
        log.info("step 1/3: fitting on the validation split, choosing parameters and the blend")
        chosen, params, tuning = trainer.tune()
        log.info("step 2/3: measuring on the test split (%.0f s so far)", time.perf_counter() - started)
        metrics = trainer.measure(chosen, params)
        log.info("step 3/3: fitting on everything (%.0f s so far)", time.perf_counter() - started)
        everything = trainer.fit(Part.EVERYTHING, params)
        touchpoints = touchpoint_report(store)
    final = trainer.artifact(everything, chosen)
    started = time.perf_counter()
    final = dataclasses.replace(final, retrieval=retrieval.build(final.components, len(final.item_ids)))
    if final.retrieval:
        log.info("retrieval indexes for %s built in %.0f s", ", ".join(final.retrieval),
                 time.perf_counter() - started)  # fmt: skip
    relations = evaluate.item_relations(
        Recommender(final, "evaluation"), final.item_categories, final.item_tags, config.k
    )
    log.info("similar items: %s", relations_line(relations, config.k))

    current = _current_ndcg(out_dir)
    ndcg = metrics["blend"]["overall"]["ndcg"]
    promoted = config.force_promote or current is None or ndcg >= current[1]
    if not promoted and current is not None:
        log.warning("not promoted: test NDCG@%d %.4f is below %.4f of %s (use --force-promote)",
                    config.k, ndcg, current[1], current[0])  # fmt: skip
    inputs = [p for p in (events_path, items_path, users_path) if p is not None]

    def write(directory: Path) -> dict:
        final.save(directory)
        touchpoints.to_csv(directory / TOUCHPOINT_REPORT, index=False, float_format="%.4f")
        return {
            "format": FORMAT,
            "promoted": promoted,
            "compared_with": {"version": current[0], "ndcg": current[1]} if current else None,
            "data_fingerprint": fingerprint(inputs),
            "inputs": [str(p) for p in inputs],
            "parameters": asdict(config),
            "blend": {
                "weights": chosen.weights,
                "novelty": chosen.novelty,
                "visitor_weights": chosen.visitor_weights,
            },
            "components": list(final.components),
            "chosen_params": {name: asdict(p) for name, p in params.items()},
            "tuning": tuning,
            "metrics": metrics,
            "relations": relations,
            "counts": {"users": len(final.user_ids), "items": len(final.item_ids), "events": n_events},
            "read_reports": [
                {"source": r.source, "read": r.rows_read, "kept": r.rows_kept, "dropped": dict(r.dropped)}
                for r in reports
            ],
        }

    version_dir = versions.publish(out_dir, write)
    log.info("published %s (%s)", version_dir, "promoted" if promoted else "NOT promoted")
    return TrainResult(version_dir, reports, metrics, promoted)
