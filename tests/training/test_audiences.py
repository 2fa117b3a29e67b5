"""The audiences job over a log of planted behaviours beside look-alike controls: every default tag finds
its planted users (precision and recall >= 0.9), the published table has exactly the agreed columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from models import versions
from models.audiences.audience_set import FORMAT
from tests.support.audience_log import AS_OF, planted_log
from training import audiences
from training.__main__ import main

DEFAULT_TAGS = [
    "abandoned_cart",
    "viewed_not_ordered",
    "refill_due",
    "repeat_buyer",
    "dormant",
    "new_customer",
]


@pytest.fixture(scope="module")
def published(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[audiences.AudienceResult, dict[str, set[str]]]:
    directory = tmp_path_factory.mktemp("audiences")
    log = planted_log()
    events, items = log.write(directory)
    config = audiences.AudienceConfig(as_of=AS_OF.timestamp())
    return audiences.run(events, items, directory / "out", config=config), log.planted


def test_every_default_tag_recovers_its_planted_users(
    published: tuple[audiences.AudienceResult, dict[str, set[str]]],
) -> None:
    result, planted = published
    figures = {}
    for tag in DEFAULT_TAGS:
        found = set(result.tags.loc[result.tags["tag"] == tag, "user_id"])
        hits = len(found & planted[tag])
        figures[tag] = (hits / max(len(found), 1), hits / len(planted[tag]))
    table = "; ".join(f"{tag}: precision {p:.3f} recall {r:.3f}" for tag, (p, r) in figures.items())
    print(table)
    assert all(p >= 0.9 and r >= 0.9 for p, r in figures.values()), table


def test_published_table_has_exactly_the_agreed_columns(
    published: tuple[audiences.AudienceResult, dict[str, set[str]]],
) -> None:
    result, _ = published
    manifest = versions.read_manifest(result.version_dir, verify=True, expected_format=FORMAT)
    assert set(manifest["files"]) == {"tags.parquet", "audiences.html"}
    schema = pq.read_schema(result.version_dir / "tags.parquet")
    assert [(f.name, str(f.type)) for f in schema] == [
        ("user_id", "string"),
        ("tag", "string"),
        ("category", "string"),
        ("since", "timestamp[us, tz=UTC]"),
        ("suggested_item_ids", "list<element: string>"),
    ]
    table = pq.read_table(result.version_dir / "tags.parquet").to_pandas()
    assert table.loc[table["tag"] == "repeat_buyer", "category"].isna().all()
    carts = table[table["tag"] == "abandoned_cart"]
    assert (carts["category"] == "sofa").all()
    assert (
        carts["suggested_item_ids"].map(lambda items: len(items) > 0 and items[0].startswith("sofa_")).all()
    )
    assert (table["since"] <= AS_OF).all()


def test_abandoned_item_comes_first_in_its_suggestions(tmp_path: Path) -> None:
    log = planted_log(n=3)
    events, items = log.write(tmp_path)
    result = audiences.run(
        events, items, tmp_path / "out", config=audiences.AudienceConfig(as_of=AS_OF.timestamp())
    )
    carted = log.events[log.events["event_type"] == "cart"].set_index("user_id")["item_id"]
    rows = result.tags[result.tags["tag"] == "abandoned_cart"]
    for user, suggested in zip(rows["user_id"], rows["suggested_item_ids"], strict=True):
        if user in log.planted["abandoned_cart"]:
            assert suggested[0] == carted[user]


def test_command_line_publishes_and_refuses_a_bad_rule_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = planted_log(n=3)
    events, items = log.write(tmp_path)
    assert (
        main(["audiences", "--events", str(events), "--items", str(items), "--out", str(tmp_path / "o")]) == 0
    )
    assert len(versions.list_versions(tmp_path / "o")) == 1
    rules = tmp_path / "rules.toml"
    rules.write_text('[tags.mine]\nevents = ["order"]\nwithin = 3\n')
    args = [
        "audiences",
        "--events",
        str(events),
        "--items",
        str(items),
        "--tags",
        str(rules),
        "--out",
        str(tmp_path / "o"),
    ]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert "tag 'mine'" in error and "unknown key 'within'" in error


def test_model_dir_suggestions_come_from_the_serving_recommender(
    world: dict[str, Path], model_dir: Path, tmp_path: Path
) -> None:
    config = audiences.AudienceConfig(recommender_limit=30)
    result = audiences.run(
        world["events.csv"], world["items.csv"], tmp_path, model_dir=model_dir, config=config
    )
    manifest = versions.read_manifest(result.version_dir)
    assert manifest["model_version"] == versions.list_versions(model_dir)[-1]
    items = pd.read_csv(world["items.csv"], dtype=str).set_index("item_id")
    in_stock = items["in_stock"].str.lower().isin(["true", "1", "yes", ""])
    with_category = result.tags[result.tags["category"].notna()].groupby("tag").head(30)
    assert len(with_category) > 0
    for category, suggested in zip(
        with_category["category"], with_category["suggested_item_ids"], strict=True
    ):
        assert len(suggested) > 0
        assert all(in_stock[i] for i in suggested)
        assert (items.loc[list(suggested), "category"] == category).all()
