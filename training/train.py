"""The recommender training job: logs in, a published model version out."""

from __future__ import annotations

import hashlib
import logging
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from models import versions
from models.recommend.artifact import FORMAT, RecommenderArtifact
from training import interactions as inter
from training.readers import DEFAULT_EVENT_WEIGHTS, ReadReport, read_events, read_items, read_users

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    factors: int = 64
    iterations: int = 15
    regularization: float = 0.1
    alpha: float = 5.0
    seed: int = 42
    half_life_days: float | None = None
    event_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS))
    # The event type a session item counts as when folded into a user's vector at request time.
    session_event: str = "click"


@dataclass(frozen=True)
class TrainResult:
    version_dir: Path
    reports: list[ReadReport]


def fingerprint(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(versions.sha256_file(path).encode())
    return digest.hexdigest()


def fit_als(matrix, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    from implicit.cpu.als import AlternatingLeastSquares

    # One BLAS thread: implicit parallelises over users itself.
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=config.factors,
            regularization=config.regularization,
            alpha=config.alpha,
            iterations=config.iterations,
            random_state=config.seed,
        )
        model.fit(matrix, show_progress=sys.stderr.isatty())
    return np.asarray(model.user_factors, dtype=np.float32), np.asarray(model.item_factors, dtype=np.float32)


def popularity(events: pd.DataFrame, item_ids: np.ndarray, weights: dict[str, float]) -> tuple:
    """Weighted event counts per item, overall and per scene, each scaled to [0, 1]."""
    weight = inter.event_confidence(events, weights, None)
    codes = pd.Index(item_ids).get_indexer(events["item_id"])
    overall = np.bincount(codes, weights=weight, minlength=len(item_ids))
    scenes = np.array(sorted(s for s in events["scene"].unique() if s), dtype=str)
    per_scene = np.zeros((len(scenes), len(item_ids)))
    scene_codes = pd.Index(scenes).get_indexer(events["scene"])
    known = scene_codes >= 0
    np.add.at(per_scene, (scene_codes[known], codes[known]), weight[known])
    return _unit(overall), scenes, np.vstack([_unit(row) for row in per_scene]) if len(scenes) else per_scene


def _unit(values: np.ndarray) -> np.ndarray:
    top = values.max() if values.size else 0.0
    return (values / top if top > 0 else values).astype(np.float32)


def train(
    events_path: Path, items_path: Path, users_path: Path | None, out_dir: Path, config: TrainConfig
) -> TrainResult:
    items, items_report = read_items(items_path)
    events, events_report = read_events(events_path, config.event_weights, set(items["item_id"]))
    reports = [items_report, events_report]
    if users_path is not None:
        reports.append(read_users(users_path)[1])
    for report in reports:
        log.info("%s", report.summary())
    if config.session_event not in config.event_weights:
        raise ValueError(f"session event type {config.session_event!r} has no weight")

    item_ids = items["item_id"].to_numpy().astype(str)
    data = inter.build(events, item_ids, config.event_weights, config.half_life_days)
    if data.confidence.nnz == 0:
        raise ValueError("no weighted events to learn from")
    log.info(
        "training ALS on %d users × %d items, %d interactions", *data.confidence.shape, data.confidence.nnz
    )
    user_factors, item_factors = fit_als(data.confidence, config)
    overall, scenes, per_scene = popularity(events, item_ids, config.event_weights)
    history = data.confidence.tocsr()
    artifact = RecommenderArtifact(
        item_ids=item_ids,
        item_titles=items["title"].to_numpy().astype(str),
        item_categories=items["category"].to_numpy().astype(str),
        item_prices=items["price"].to_numpy(dtype=np.float64),
        item_in_stock=items["in_stock"].to_numpy(dtype=bool),
        user_ids=data.user_ids,
        user_factors=user_factors,
        item_factors=item_factors,
        regularization=np.array(config.regularization),
        history_indptr=history.indptr.astype(np.int64),
        history_indices=history.indices.astype(np.int32),
        history_confidence=(history.data * config.alpha).astype(np.float32),
        session_confidence=np.array(config.alpha * config.event_weights[config.session_event]),
        popularity=overall,
        scene_names=scenes,
        scene_popularity=per_scene.astype(np.float32),
    )
    artifact.check()
    inputs = [p for p in (events_path, items_path, users_path) if p is not None]

    def write(directory: Path) -> dict:
        artifact.save(directory)
        return {
            "format": FORMAT,
            "data_fingerprint": fingerprint(inputs),
            "inputs": [str(p) for p in inputs],
            "parameters": asdict(config),
            "counts": {
                "users": len(data.user_ids),
                "items": len(item_ids),
                "interactions": int(data.confidence.nnz),
                "events": len(events),
            },
            "read_reports": [
                {"source": r.source, "read": r.rows_read, "kept": r.rows_kept, "dropped": dict(r.dropped)}
                for r in reports
            ],
        }

    version_dir = versions.publish(out_dir, write)
    log.info("published %s", version_dir)
    return TrainResult(version_dir, reports)
