"""`python -m training experiments` on a log written in the service's format: the counts it attributes,
its JSON and its HTML."""

from __future__ import annotations

import json
from pathlib import Path

from models.event_format import EXPOSURES, Event, Exposure, partition
from training.__main__ import main

T0 = 1_790_000_000.0  # 2026-09-22
HOUR = 3600.0

EXPERIMENTS = """
[experiment.feed]
touchpoint = "home_feed"
[[experiment.feed.arms]]
name = "control"
weight = 1
[[experiment.feed.arms]]
name = "candidate"
weight = 1
"""


def write_log(directory: Path) -> None:
    exposures = [
        Exposure("r1", T0, "u1", "home_feed", "feed", "control", "v1", ("i1", "i2")),
        Exposure("r2", T0 + HOUR, "u1", "home_feed", "feed", "control", "v1", ("i3",)),
        Exposure("r3", T0, "u2", "home_feed", "feed", "candidate", "v1", ("i1", "i4")),
    ]
    events = [
        Event("e1", T0, "u1", "i1", "impression", "home_feed", "browse", None, "r1"),
        Event("e2", T0, "u1", "i2", "impression", "home_feed", "browse", None, "r1"),
        Event("e3", T0 + 60, "u1", "i1", "click", "home_feed", "browse", None, "r1"),
        Event("e4", T0 + 61, "u1", "i1", "click", "home_feed", "browse", None, "r1"),  # a double click
        Event("e5", T0 + 2 * HOUR, "u1", "i3", "order", "cart", "", 80.0, "r2"),
        Event("e6", T0, "u2", "i1", "impression", "home_feed", "search", None, "r3"),
        # No recommendation id: credited to u2's answer that showed i4 within 24 h, and i1 too late.
        Event("e7", T0 + 5 * HOUR, "u2", "i4", "click", "pdp", "", None, ""),
        Event("e8", T0 + 30 * HOUR, "u2", "i1", "order", "pdp", "", 20.0, ""),
    ]
    for event in events:
        append(partition(directory, event.day(), "w0"), event.line())
    for exposure in exposures:
        append(partition(directory, exposure.day(), "w0", EXPOSURES), exposure.line())
    retries = partition(directory, exposures[0].day(), "w1", EXPOSURES)
    append(retries, '{"recommendation_id": "r9", "user_id": "u3"}\nnot json\n')  # incomplete, unreadable
    append(retries, exposures[0].line())  # a retried write: the same answer once


def append(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(text)


def run(tmp_path: Path, *extra: str) -> dict:
    log = tmp_path / "log"
    log.mkdir()
    write_log(log)
    (tmp_path / "experiments.toml").write_text(EXPERIMENTS)
    items = tmp_path / "items.csv"
    items.write_text("item_id,title,category\ni1,A,lamp\ni2,B,lamp\ni3,C,filter\ni4,D,filter\n")
    args = ["experiments", "--events", str(log), "--experiments", str(tmp_path / "experiments.toml")]
    assert main([*args, "--items", str(items), "--out", str(tmp_path / "out"), *extra]) == 0
    return json.loads((tmp_path / "out" / "experiments.json").read_text())


def test_counts_are_attributed_per_answer_and_user(tmp_path):
    result = run(tmp_path)
    assert result["exposures_unreadable"] == 2
    (experiment,) = result["experiments"]
    assert experiment["name"] == "feed" and experiment["touchpoint"] == "home_feed"
    control, candidate = experiment["arms"]
    assert {k: control[k] for k in ("users", "exposures", "impression_events", "clicks", "orders")} == {
        "users": 1,
        "exposures": 2,
        "impression_events": 2,
        "clicks": 1,
        "orders": 1,
    }
    assert control["revenue"] == 80.0 and control["ctr"]["value"] == 0.5
    assert control["conversion"]["value"] == 0.5 and control["revenue_per_impression"]["value"] == 40.0
    assert {k: candidate[k] for k in ("users", "exposures", "clicks", "orders")} == {
        "users": 1,
        "exposures": 1,
        "clicks": 1,
        "orders": 0,
    }
    assert set(experiment["srm"]) >= {"p_value", "users", "mismatch"}
    assert experiment["decision"]["status"] == "no_difference_yet"
    assert experiment["decision"]["inference"] == "always_valid"
    assert experiment["decision"]["winner"] is None


def test_the_touchpoint_review_credits_the_slot_that_showed_it(tmp_path):
    review = run(tmp_path)["touchpoints"]
    slots = {(s["touchpoint"], s["scene"]): s for s in review["slots"]}
    assert slots["home_feed", "browse"]["impressions"] == 2
    # The review counts events (the double click twice). u2's click on i4 carries no id and no
    # impression event showed u2 i4 (only the exposure did), so the review leaves it out.
    funnel = {(f["touchpoint"], f["scene"], f["category"]): f for f in review["funnels"]}
    assert funnel["home_feed", "browse", "lamp"]["clicks"] == 2
    assert funnel["home_feed", "browse", "lamp"]["drop_impressions_to_clicks"] == 0.0
    assert funnel["home_feed", "search", "lamp"]["orders"] == 0  # e8 came 30 h after the impression


def test_the_period_leaves_out_what_falls_outside_it(tmp_path):
    result = run(tmp_path, "--since", str(T0 + 30 * 60))
    control, candidate = result["experiments"][0]["arms"]
    assert control["exposures"] == 1 and candidate["users"] == 0
    assert control["ctr"]["value"] == 0.0 and candidate["ctr"]["value"] is None


def test_the_html_report_has_the_decision_tables_and_charts(tmp_path):
    run(tmp_path)
    page = (tmp_path / "out" / "experiments.html").read_text()
    assert "Experiment feed on home_feed" in page and "no_difference_yet" in page
    assert page.count("data:image/png;base64,") == 3  # the arms, the slots, the funnels
    assert "<script" not in page and "http" not in page  # nothing fetched from elsewhere


def test_a_bad_time_is_an_error_naming_the_flag(tmp_path, capsys):
    log = tmp_path / "log"
    log.mkdir()
    write_log(log)
    (tmp_path / "x.toml").write_text(EXPERIMENTS)
    args = ["experiments", "--events", str(log), "--experiments", str(tmp_path / "x.toml")]
    assert main([*args, "--out", str(tmp_path), "--until", "soon"]) == 2
    assert "--until" in capsys.readouterr().err
