"""Looking after a model directory: which versions there are, rolling back to an older one, deleting old
ones that never served (`python -m training versions list|promote|prune`).

The service serves the newest promoted version. Promoting an older version rolls back: every newer
promoted version is demoted (its manifest says by whom and when), and the service switches within one
poll. Manifests are rewritten atomically; the arrays and their checksums are never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models import versions


@dataclass(frozen=True)
class VersionInfo:
    name: str
    created: str
    promoted: bool
    ndcg: float | None  # the blend's test NDCG@k, as training measured it
    size_mb: float
    note: str  # why not promoted, when it is not


def describe(root: Path) -> list[VersionInfo]:
    """Every version, oldest first."""
    result = []
    for name in versions.list_versions(root):
        try:
            manifest = versions.read_manifest(root / name, verify=False)
        except versions.VersionError as error:
            result.append(VersionInfo(name, "", False, None, _size_mb(root / name), f"unreadable: {error}"))
            continue
        metrics = manifest.get("metrics", {}).get("blend", {}).get("overall", {})
        demoted = manifest.get("demoted")
        note = ""
        if demoted:
            note = f"rolled back to {demoted.get('to')} at {demoted.get('at')}"
        elif not manifest.get("promoted"):
            note = "withheld by the promotion gate"
        result.append(
            VersionInfo(
                name,
                str(manifest.get("created", "")),
                bool(manifest.get("promoted")),
                metrics.get("ndcg"),
                _size_mb(root / name),
                note,
            )
        )
    return result


def serving(infos: list[VersionInfo]) -> str:
    """The version the service serves: the newest promoted one ("" when none)."""
    promoted = [i.name for i in infos if i.promoted]
    return promoted[-1] if promoted else ""


def table(root: Path) -> str:
    infos = describe(root)
    now = serving(infos)
    lines = [f"{'version':<32}{'created':<27}{'promoted':<10}{'NDCG@k':>8}{'MB':>8}  note"]
    for i in infos:
        ndcg = f"{i.ndcg:.4f}" if i.ndcg is not None else "-"
        note = "serving" + (f"; {i.note}" if i.note else "") if i.name == now else i.note
        promoted = "yes" if i.promoted else "no"
        lines.append(f"{i.name:<32}{i.created:<27}{promoted:<10}{ndcg:>8}{i.size_mb:>8.1f}  {note}")
    return "\n".join(lines)


def promote(root: Path, name: str) -> list[str]:
    """Makes `name` the serving version: promotes it and demotes every newer promoted version (a
    rollback when it is older). Returns the versions demoted."""
    names = versions.list_versions(root)
    if name not in names:
        raise ValueError(f"no version {name!r} in {root} (see `versions list`)")
    versions.read_manifest(root / name, verify=True)  # a broken version is not put back into service
    at = datetime.now(UTC).isoformat(timespec="seconds")
    _update(root / name, {"promoted": True, "demoted": None})
    demoted = []
    for newer in names[names.index(name) + 1 :]:
        if versions.read_manifest(root / newer, verify=False).get("promoted"):
            _update(root / newer, {"promoted": False, "demoted": {"to": name, "at": at}})
            demoted.append(newer)
    return demoted


def prune(root: Path, dry_run: bool = False) -> list[str]:
    """Deletes the versions that are not promoted and are older than the serving one (they never
    served, or no longer do, and a rollback goes to a promoted version). Returns what was (or would be)
    deleted."""
    infos = describe(root)
    now = serving(infos)
    doomed = [i.name for i in infos if not i.promoted and now and i.name < now]
    if not dry_run:
        for name in doomed:
            shutil.rmtree(root / name)
    return doomed


def _update(version_dir: Path, changes: dict[str, Any]) -> None:
    manifest = versions.read_manifest(version_dir, verify=False)
    manifest.update({k: v for k, v in changes.items() if v is not None})
    for key in [k for k, v in changes.items() if v is None]:
        manifest.pop(key, None)
    handle, tmp = tempfile.mkstemp(prefix=".manifest-", dir=version_dir)
    with os.fdopen(handle, "w") as f:
        f.write(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, version_dir / versions.MANIFEST)


def _size_mb(directory: Path) -> float:
    return sum(p.stat().st_size for p in directory.iterdir() if p.is_file()) / 1e6
