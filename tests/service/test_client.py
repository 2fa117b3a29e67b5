"""The command-line client against a real server: the catalog and event commands (JSON, JSON lists,
JSON Lines, batches), get-items' output sent back as it is, errors a person can act on, numbers and
counts as a person reads them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from service import client, client_input
from service.pb.shifu.v1 import catalog_pb2, dispatch_pb2
from service.server import RunningServer
from tests.support import ROOT, sample_job, sample_technician, start_server

COMMANDS = (
    "recommend",
    "similar",
    "describe",
    "assign",
    "rank",
    "upsert-items",
    "get-items",
    "delete-items",
    "record-events",
    "health",
)


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[RunningServer]:
    """A server of this module's own: its catalog changes are seen by no other test."""
    running = start_server(model_dir)
    yield running
    running.shutdown()


@pytest.fixture
def run(server: RunningServer, capsys: pytest.CaptureFixture[str]):
    """The client's main() against the server: (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = client.main(["--target", f"127.0.0.1:{server.port}", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def answer(run, *args: str) -> Any:
    code, out, err = run(*args)
    assert code == 0, err
    return json.loads(out)


def write_lines(path: Path, entries: list[Any]) -> Path:
    path.write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    return path


def test_help_lists_every_command_with_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        client.main(["--help"])
    assert exit.value.code == 0
    shown = capsys.readouterr().out
    for command in COMMANDS:
        assert re.search(rf"^\s+{command}\s+\w", shown, re.M), f"--help does not describe {command}"
    assert "--target" in shown


def test_get_items_output_goes_back_into_upsert_items_as_it_is(run, tmp_path: Path) -> None:
    code, printed, err = run("get-items", "--item", "i00001", "--item", "i00002", "--item", "nope")
    assert code == 0, err
    before = json.loads(printed)
    assert [i["itemId"] for i in before["items"]] == ["i00001", "i00002"]
    assert before["missingItemIds"] == ["nope"]
    assert all(isinstance(i["tags"], list) and "inStock" in i for i in before["items"])  # zeros shown
    (tmp_path / "items.json").write_text(printed)
    upserted = answer(run, "upsert-items", "--request", str(tmp_path / "items.json"))
    assert (upserted["added"], upserted["updated"]) == (0, 2)
    after = answer(run, "get-items", "--item", "i00001", "--item", "i00002", "--item", "nope")
    assert after["items"] == before["items"]


def test_upsert_items_takes_json_lines_a_list_and_both_shapes_of_tags(run, tmp_path: Path) -> None:
    lines = write_lines(
        tmp_path / "items.jsonl",
        [
            {"itemId": "new-a", "category": "lamp", "title": "Lamp", "tags": ["oak", "nordic"]},
            {"item_id": "new-b", "category": "sofa", "price": 1299.5, "tags": {"values": ["grey"]}},
        ],
    )
    assert answer(run, "upsert-items", "--request", str(lines))["added"] == 2
    listed = tmp_path / "changes.json"
    listed.write_text(json.dumps([{"itemId": "new-a", "tags": []}, {"itemId": "new-b", "inStock": False}]))
    assert answer(run, "upsert-items", "--request", str(listed))["updated"] == 2
    items = {i["itemId"]: i for i in answer(run, "get-items", "--request", str(lines))["items"]}
    assert items["new-a"]["tags"] == [] and items["new-a"]["title"] == "Lamp"
    assert items["new-b"]["tags"] == ["grey"] and items["new-b"]["inStock"] is False
    assert items["new-b"]["price"] == 1299.5


def test_delete_items_takes_ids_and_the_items_get_items_printed(run, tmp_path: Path) -> None:
    write = write_lines(
        tmp_path / "items.jsonl", [{"itemId": f"gone-{n}", "category": "lamp"} for n in range(3)]
    )
    assert answer(run, "upsert-items", "--request", str(write))["added"] == 3
    (tmp_path / "got.json").write_text(json.dumps(answer(run, "get-items", "--request", str(write))))
    deleted = answer(run, "delete-items", "--request", str(tmp_path / "got.json"), "--item", "never")
    assert deleted["deleted"] == 3 and deleted["unknownItemIds"] == ["never"]
    assert answer(run, "get-items", "--item", "gone-0")["missingItemIds"] == ["gone-0"]


def test_more_entries_than_one_call_takes_go_in_batches_and_add_up(run, tmp_path: Path) -> None:
    many = write_lines(
        tmp_path / "many.jsonl", [{"itemId": f"bulk-{n}", "category": "lamp"} for n in range(1234)]
    )
    upserted = answer(run, "upsert-items", "--request", str(many))
    assert (upserted["added"], upserted["updated"]) == (1234, 0)
    got = answer(run, "get-items", "--request", str(many))
    assert len(got["items"]) == 1234 and got["missingItemIds"] == []
    assert answer(run, "delete-items", "--request", str(many))["deleted"] == 1234


def test_a_batch_the_service_refuses_is_named_by_where_it_is_in_the_file(run, tmp_path: Path) -> None:
    entries = [{"itemId": f"part-{n}", "category": "lamp"} for n in range(1500)]
    del entries[1200]["category"]  # a new item needs one: refused by the service, not the client
    code, out, err = run("upsert-items", "--request", str(write_lines(tmp_path / "items.jsonl", entries)))
    assert code == 1 and not out
    assert err.startswith("INVALID_ARGUMENT: items[200].category: "), err
    assert "in the batch of entries 1001-1500, where [0] is entry 1001; the 1000 entries before" in err
    assert answer(run, "get-items", "--item", "part-999", "--item", "part-1000")["missingItemIds"] == [
        "part-1000"
    ]


def test_record_events_from_json_lines_can_be_sent_again(run, tmp_path: Path) -> None:
    events = write_lines(
        tmp_path / "events.jsonl",
        [
            {
                "eventId": f"cli-{n}",
                "timestamp": "2026-11-02T10:00:00+08:00",
                "userId": "u00001",
                "itemId": "i00001",
                "eventType": "click",
            }
            for n in range(2)
        ],
    )
    first, again = (answer(run, "record-events", "--request", str(events)) for _ in range(2))
    assert (first["recorded"], first["duplicates"]) == (2, 0)
    assert (again["recorded"], again["duplicates"]) == (0, 2)


def test_a_malformed_time_names_its_field_and_exits_2_without_a_traceback(
    server: RunningServer, world: dict[str, Path], tmp_path: Path
) -> None:
    day = json.loads(world["dispatch_day.json"].read_text())
    day["jobs"][0]["timeWindow"] = {"start": "2026-11-02 02:00", "end": "2026-11-02T04:00:00Z"}
    (tmp_path / "day.json").write_text(json.dumps(day))
    result = subprocess.run(
        [sys.executable, "-m", "service.client", "--target", f"127.0.0.1:{server.port}",
         "assign", "--request", str(tmp_path / "day.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {tmp_path / 'day.json'}: jobs[0].timeWindow.start: ")
    assert "'2026-11-02 02:00' is not an RFC 3339 time" in result.stderr


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"eventId": "x", "timestamp": "yesterday"}, "line 2: timestamp: 'yesterday' is not an RFC 3339"),
        ({"eventId": "x", "value": "a lot"}, "line 2: value: "),
        ({"eventId": "x", "evenType": "click"}, "line 2: Event has no field 'evenType'"),
    ],
)
def test_a_bad_line_is_named_by_its_line_and_field(run, tmp_path: Path, line: dict, field: str) -> None:
    events = write_lines(tmp_path / "events.jsonl", [{"eventId": "fine"}, line])
    code, out, err = run("record-events", "--request", str(events))
    assert code == 2 and not out
    assert err.startswith(f"error: {events} {field}"), err


def test_rank_prints_scores_and_km_rounded_unless_asked(run, tmp_path: Path) -> None:
    request = dispatch_pb2.RankTechniciansRequest(job=sample_job(), technicians=[sample_technician()])
    request.technicians[0].location.lng += 0.0123457  # km with every decimal a double has
    (tmp_path / "rank.json").write_text(json_format.MessageToJson(request))
    code, out, err = run("rank", "--request", str(tmp_path / "rank.json"))
    assert code == 0, err
    (ranked,) = json.loads(out)["technicians"]
    assert ranked["travelKm"] == pytest.approx(1.62, abs=0.01)  # 1.11 km north, 1.17 km east
    decimals = [len(n) for n in re.findall(r"\.(\d+)", out)]
    assert max(decimals) <= 4, out
    code, exact, err = run("--exact", "rank", "--request", str(tmp_path / "rank.json"))
    assert code == 0 and max(len(n) for n in re.findall(r"\.(\d+)", exact)) > 4


def test_a_small_score_keeps_its_significant_digits() -> None:
    assert client.rounded({"a": [1.23456789, -0.000123456, 0.0, 3]}) == {"a": [1.2346, -0.000123, 0.0, 3]}


def test_the_summary_counts_one_job_as_one_job() -> None:
    response = dispatch_pb2.AssignJobsResponse(status=dispatch_pb2.SOLVE_STATUS_OPTIMAL, travel_km=1.0)
    response.assignments.add(job_id="j1", technician_id="t1", sequence=1, travel_km=1.0)
    response.unassigned.add(job_id="j2", reason=dispatch_pb2.UNASSIGNED_REASON_NO_QUALIFIED_TECHNICIAN)
    response.routes.add(technician_id="t1", job_ids=["j1"], travel_km=1.0)
    text = client.summary(response, 8.0)
    assert text.startswith("optimal: 1 job assigned, 1 left out, 1.0 km")
    assert "\nt1: 1 job, 1.0 km" in text and "1 jobs" not in text


def test_the_summary_shows_breaks_in_the_day_and_the_jobs_a_re_plan_moved() -> None:
    response = dispatch_pb2.AssignJobsResponse(status=dispatch_pb2.SOLVE_STATUS_FEASIBLE, reassigned_jobs=1)
    noon = 1_800_000_000 - 1_800_000_000 % 86400 + 4 * 3600  # 12:00 at UTC+8
    for k, job in enumerate(("j1", "j2")):
        a = response.assignments.add(job_id=job, technician_id="t1", sequence=k + 1, travel_km=2.0)
        a.arrival.seconds = noon + (-3600 if k == 0 else 3600)
    response.assignments[1].reassigned = True
    route = response.routes.add(technician_id="t1", job_ids=["j1", "j2"], travel_km=4.0)
    route.start.seconds, route.end.seconds = noon - 4 * 3600, noon + 2 * 3600
    route.breaks.add(duration_minutes=30).start.seconds = noon
    text = client.summary(response, 8.0)
    assert "1 job moved from their technician" in text
    assert "t1: 2 jobs, 4.0 km, 08:00-14:00" in text
    day = text.split("t1:")[1].splitlines()[1:4]
    assert "11:00  j1" in day[0] and "12:00  break, 30 min" in day[1], day
    assert "13:00  j2" in day[2] and day[2].endswith("(moved here)"), day


def test_answers_of_batches_add_their_counts_and_keep_the_latest_version() -> None:
    total = client_input.add_up(
        catalog_pb2.DeleteItemsResponse(deleted=2, unknown_item_ids=["a"], catalog_version=7),
        catalog_pb2.DeleteItemsResponse(deleted=0, unknown_item_ids=["b"], catalog_version=8),
    )
    assert (total.deleted, list(total.unknown_item_ids), total.catalog_version) == (2, ["a", "b"], 8)


def test_a_reader_that_goes_away_gets_no_traceback(server: RunningServer) -> None:
    """`client … | head -1` used to end in a BrokenPipeError traceback."""
    command = [
        sys.executable,
        "-m",
        "service.client",
        "--target",
        f"127.0.0.1:{server.port}",
        "recommend",
        "--user",
        "x",
        "--limit",
        "500",
    ]
    reader = subprocess.Popen(["head", "-c", "1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    done = subprocess.run(command, stdout=reader.stdin, stderr=subprocess.PIPE, text=True, timeout=60)
    assert reader.stdin is not None
    reader.stdin.close()
    reader.wait(timeout=10)
    assert "Traceback" not in done.stderr
