"""The registry's load-then-swap that refuses bad versions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from models import versions
from models.recommend.recommender import Query
from service.registry import recommender_registry


def copy_version(source_dir: Path, target_root: Path, name: str) -> Path:
    (newest,) = versions.list_versions(source_dir)
    target = target_root / name
    shutil.copytree(source_dir / newest, target)
    return target


def test_registry_serves_nothing_until_a_version_appears(tmp_path: Path, model_dir: Path) -> None:
    registry = recommender_registry(tmp_path / "not-yet-created")
    assert registry.refresh() is False and registry.current() is None
    copy_version(model_dir, tmp_path / "not-yet-created", "20260101T000000Z-aaaaaa")
    assert registry.refresh() is True
    assert registry.current().version == "20260101T000000Z-aaaaaa"


def test_corrupt_newer_version_is_refused_and_the_old_one_keeps_serving(
    tmp_path: Path, model_dir: Path
) -> None:
    copy_version(model_dir, tmp_path, "20260101T000000Z-aaaaaa")
    registry = recommender_registry(tmp_path)
    registry.refresh()
    old = registry.current()

    corrupt = copy_version(model_dir, tmp_path, "20260201T000000Z-bbbbbb")
    arrays = corrupt / "recommender.npz"
    data = bytearray(arrays.read_bytes())
    data[len(data) // 2] ^= 0xFF
    arrays.write_bytes(bytes(data))
    assert registry.refresh() is False
    assert registry.current() is old
    assert "20260201T000000Z-bbbbbb" in registry.refused()

    good = copy_version(model_dir, tmp_path, "20260301T000000Z-cccccc")
    assert registry.refresh() is True
    assert registry.current().version == good.name
    # A request that started on the old version finishes on it.
    assert old.recommend(Query(user_id="anyone", limit=3))


def test_version_of_another_format_is_refused(tmp_path: Path, model_dir: Path) -> None:
    version = copy_version(model_dir, tmp_path, "20260101T000000Z-aaaaaa")
    manifest = json.loads((version / "manifest.json").read_text())
    manifest["format"] = "someone-else/9"
    (version / "manifest.json").write_text(json.dumps(manifest))
    registry = recommender_registry(tmp_path)
    assert registry.refresh() is False and registry.current() is None


def test_at_start_the_newest_good_version_is_chosen_over_a_corrupt_newest(
    tmp_path: Path, model_dir: Path
) -> None:
    copy_version(model_dir, tmp_path, "20260101T000000Z-aaaaaa")
    broken = copy_version(model_dir, tmp_path, "20260201T000000Z-bbbbbb")
    (broken / "recommender.npz").unlink()
    registry = recommender_registry(tmp_path)
    assert registry.refresh() is True
    assert registry.current().version == "20260101T000000Z-aaaaaa"
