"""Versioned artifact directories: how training publishes a version and how the service finds one.

A model directory holds one sub-directory per version, named so that names sort by age
(`20261123T101500Z-3f2a1c`). A version is written under a hidden temporary name and renamed into place
when complete, so a reader never sees half a version. Its `manifest.json` lists every file with a
SHA-256 checksum; a version whose files do not match is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


class VersionError(Exception):
    """A version directory is incomplete, corrupt or of an unknown format."""


def new_version_name(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def list_versions(root: Path) -> list[str]:
    """Published versions (those with a manifest), oldest first."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and (p / MANIFEST).is_file())


def publish(root: Path, write: Callable[[Path], dict[str, Any]], name: str | None = None) -> Path:
    """Runs `write(tmpdir)`, which writes the version's files and returns its manifest fields,
    then adds checksums and moves the directory into place atomically."""
    root.mkdir(parents=True, exist_ok=True)
    name = name or new_version_name()
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        manifest = dict(write(tmp))
        files = sorted(p for p in tmp.iterdir() if p.is_file() and p.name != MANIFEST)
        manifest.update(
            version=name,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            files={p.name: sha256_file(p) for p in files},
        )
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        os.chmod(tmp, 0o755)
        final = root / name
        tmp.rename(final)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_manifest(
    version_dir: Path, verify: bool = True, expected_format: str | None = None
) -> dict[str, Any]:
    """The manifest; with `verify`, every listed file is checked against its checksum; with
    `expected_format`, a version of another format is refused."""
    try:
        manifest = json.loads((version_dir / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise VersionError(f"{version_dir}: unreadable manifest: {error}") from error
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise VersionError(f"{version_dir}: manifest has no file list")
    if expected_format is not None and manifest.get("format") != expected_format:
        raise VersionError(f"{version_dir}: format {manifest.get('format')!r}, expected {expected_format!r}")
    if verify:
        for name, expected in manifest["files"].items():
            path = version_dir / name
            if not path.is_file():
                raise VersionError(f"{version_dir}: {name} is missing")
            if sha256_file(path) != expected:
                raise VersionError(f"{version_dir}: {name} does not match its checksum")
    return manifest
