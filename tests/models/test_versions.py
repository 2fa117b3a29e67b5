"""Model versions: atomic publishing, checksums, and what counts as a version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models import versions


def test_publish_writes_files_then_manifest_with_checksums(tmp_path: Path) -> None:
    def write(directory: Path) -> dict:
        (directory / "a.bin").write_bytes(b"payload")
        return {"format": "test/1"}

    version = versions.publish(tmp_path, write, name="20260101T000000Z-aaaaaa")
    manifest = versions.read_manifest(version)
    assert manifest["version"] == version.name and manifest["format"] == "test/1"
    assert manifest["files"] == {"a.bin": versions.sha256_file(version / "a.bin")}
    assert versions.list_versions(tmp_path) == [version.name]


def test_a_failed_write_leaves_no_version_behind(tmp_path: Path) -> None:
    def write(directory: Path) -> dict:
        (directory / "half.bin").write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        versions.publish(tmp_path, write)
    assert versions.list_versions(tmp_path) == [] and list(tmp_path.iterdir()) == []


def test_directories_without_a_manifest_are_not_versions(tmp_path: Path) -> None:
    (tmp_path / "20990101T000000Z-zzzzzz").mkdir()
    (tmp_path / ".20990101T000000Z-tmp").mkdir()
    assert versions.list_versions(tmp_path) == []


def test_a_version_of_another_format_is_refused_when_a_format_is_expected(tmp_path: Path) -> None:
    version = versions.publish(tmp_path, lambda directory: {"format": "someone-else/9"})
    assert versions.read_manifest(version, expected_format="someone-else/9")["format"] == "someone-else/9"
    with pytest.raises(versions.VersionError, match=r"expected 'shifu\.tiers/1'"):
        versions.read_manifest(version, expected_format="shifu.tiers/1")
    (version / versions.MANIFEST).write_text(json.dumps({"format": "x"}))
    with pytest.raises(versions.VersionError, match="no file list"):
        versions.read_manifest(version)
