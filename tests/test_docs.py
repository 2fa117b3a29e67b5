"""The documentation holds together: the README stays a short front page that links every page of docs/,
each page says first who it is for, and every relative link (a file, an image, a #heading) resolves as
GitHub renders it. Read from the files only; nothing is rendered or fetched."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from service.config import Settings

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, ROOT / "CHANGELOG.md", *DOCS]
MAX_README_LINES = 300

FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
EXTERNAL = ("http://", "https://", "mailto:")


def prose(text: str) -> str:
    """The text outside fenced blocks, with code spans blanked: links are not read from code."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text lowercased, every character that is not a
    letter, digit, underscore, hyphen or space dropped, spaces made hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link renders as its text
    text = text.replace("`", "").replace("*", "").lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in a page; a repeated heading gets -1, -2, … as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[str]:
    return [t for t in LINK.findall(prose(path.read_text())) if not t.startswith(EXTERNAL)]


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def broken(path: Path) -> list[str]:
    """The relative links of a page whose file or #anchor does not exist."""
    bad = []
    for target in links(path):
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        if not resolved.exists():
            bad.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            bad.append(f"{target}: no heading with that anchor in {shown(resolved)}")
    return bad


def test_readme_is_a_short_front_page() -> None:
    lines = README.read_text().count("\n")
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; move detail into docs/"


def test_readme_links_every_docs_page() -> None:
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in links(README)}
    assert DOCS, "docs/ has no pages"
    missing = [p.name for p in DOCS if p.resolve() not in linked]
    assert not missing, f"docs pages not linked from README.md: {missing}"


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_page_says_first_who_it_is_for(page: Path) -> None:
    paragraphs = [p for p in page.read_text().split("\n\n") if p.strip()]
    assert paragraphs[0].startswith("# "), f"{page.name} starts without a title"
    assert paragraphs[1].startswith("For "), f"{page.name}: the first paragraph should say who it is for"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    assert not broken(page), broken(page)


def test_every_service_flag_is_documented() -> None:
    table = (ROOT / "docs" / "operations.md").read_text()
    flags = ["--" + f.name.replace("_", "-") for f in dataclasses.fields(Settings)]
    missing = [flag for flag in flags if f"`{flag}`" not in table]
    assert not missing, f"flags of python -m service missing from docs/operations.md: {missing}"


def test_slug_follows_github() -> None:
    assert slug("CatalogService: the live catalog") == "catalogservice-the-live-catalog"
    assert slug("Dispatch, city-scale ROUTE days") == "dispatch-city-scale-route-days"
    assert slug("The `x-request-id` header") == "the-x-request-id-header"
    assert slug("Supply–demand") == "supplydemand"


def test_broken_links_are_found(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("# There\n\n## A heading\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[ok](there.md#a-heading) [gone](missing.md) [no anchor](there.md#nope) "
        "[self](#page) [not self](#other) `[code](ignored.md)`\n\n```\n[fenced](ignored.md)\n```\n"
    )
    assert broken(page) == [
        "missing.md: no such file",
        f"there.md#nope: no heading with that anchor in {(tmp_path / 'there.md').resolve()}",
        f"#other: no heading with that anchor in {page}",
    ]
