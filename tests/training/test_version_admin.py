"""Looking after versions: list, roll back (the running service follows), prune what never served."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import grpc

from models import versions
from service.pb.shifu.v1 import recommend_pb2 as rpb
from service.pb.shifu.v1 import recommend_pb2_grpc
from tests.support import start_server
from training import version_admin
from training.__main__ import main


def copy(model_dir: Path, root: Path, name: str, promoted: bool = True) -> Path:
    (newest,) = versions.list_versions(model_dir)
    shutil.copytree(model_dir / newest, root / name)
    manifest = json.loads((root / name / versions.MANIFEST).read_text())
    manifest["promoted"] = promoted
    (root / name / versions.MANIFEST).write_text(json.dumps(manifest))
    return root / name


def serving_version(port: int) -> str:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = recommend_pb2_grpc.RecommendServiceStub(channel)
        return stub.Recommend(rpb.RecommendRequest(user_id="u", limit=1), timeout=10).model_version


def test_rolling_back_switches_the_running_service_and_prune_keeps_what_served(
    model_dir: Path, tmp_path: Path, capsys
) -> None:
    root = tmp_path / "models"
    old = copy(model_dir, root, "20260101T000000Z-aaaaaa").name
    withheld = copy(model_dir, root, "20260115T000000Z-bbbbbb", promoted=False).name
    new = copy(model_dir, root, "20260201T000000Z-cccccc").name
    running = start_server(root)
    try:
        assert serving_version(running.port) == new
        assert main(["versions", "list", "--dir", str(root)]) == 0
        listing = capsys.readouterr().out
        assert new in listing and "serving" in listing and "withheld by the promotion gate" in listing

        assert main(["versions", "promote", old, "--dir", str(root)]) == 0
        assert "rolled back from 20260201T000000Z-cccccc" in capsys.readouterr().out
        deadline = time.monotonic() + 10
        while serving_version(running.port) != old and time.monotonic() < deadline:
            time.sleep(0.1)
        assert serving_version(running.port) == old  # the running service followed, no restart

        assert version_admin.prune(root, dry_run=True) == []  # nothing unpromoted is older than `old`
        assert main(["versions", "promote", new, "--dir", str(root)]) == 0
        assert version_admin.prune(root, dry_run=True) == [withheld]
        assert main(["versions", "prune", "--dir", str(root)]) == 0
        assert versions.list_versions(root) == [old, new]
    finally:
        running.shutdown()


def test_promoting_an_unknown_version_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["versions", "promote", "nope", "--dir", str(tmp_path)]) == 2
    assert "no version 'nope'" in capsys.readouterr().err


def test_an_unreadable_version_is_listed_as_such_and_not_promoted(tmp_path: Path, capsys) -> None:
    broken = tmp_path / "20260101T000000Z-aaaaaa"
    broken.mkdir()
    (broken / versions.MANIFEST).write_text("{not json")
    assert main(["versions", "list", "--dir", str(tmp_path)]) == 0
    assert "unreadable" in capsys.readouterr().out
    assert main(["versions", "promote", broken.name, "--dir", str(tmp_path)]) == 2
    assert "unreadable manifest" in capsys.readouterr().err
