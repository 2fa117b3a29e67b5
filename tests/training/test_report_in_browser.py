"""The published HTML reports as a person sees them: opened in headless Chromium on a 2,000 px wide
window, nothing runs off to the right and every column has a header; in each headless browser installed
(`.ci/run` installs chromium-headless-shell; a full Chromium needs other flags)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.support import headless_browser, installed_browsers
from training import tiers
from training.readers import read_jobs

WIDTH = 2000
# Written into a copy of the page: the browser lays it out, runs this, and --dump-dom prints the result.
MEASURE = """<script>
const table = document.querySelector("table");
document.title = JSON.stringify({
  page: document.documentElement.scrollWidth,
  table: Math.max(...[...table.querySelectorAll("td, th")].map(c => c.getBoundingClientRect().right)),
  headers: [...table.querySelectorAll("th")].map(h => h.textContent.trim()),
  columns: table.rows[1].cells.length,
});
</script>"""


def open_in_browser(browser: str | None, page: Path, screenshot: Path) -> dict:
    measured = page.with_name("measured.html")
    measured.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    with headless_browser(browser) as command:
        flags = [*command, "--hide-scrollbars", f"--window-size={WIDTH},1400"]
        subprocess.run(
            [*flags, f"--screenshot={screenshot}", page.as_uri()], check=True, capture_output=True, timeout=60
        )
        dom = subprocess.run(
            [*flags, "--dump-dom", measured.as_uri()], check=True, capture_output=True, text=True, timeout=60
        ).stdout
    title = re.search(r"<title>(.*?)</title>", dom, re.S)
    assert title, "the page did not render"
    return json.loads(title.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@pytest.mark.parametrize(
    "browser", installed_browsers() or [None], ids=lambda path: Path(path).name if path else "none"
)
def test_tiers_table_fits_a_2000_px_page_with_a_header_on_every_column(
    browser: str | None, world: dict[str, Path], tmp_path: Path
) -> None:
    jobs, _ = read_jobs(world["job_log.csv"])
    table, thresholds = tiers.compute(jobs, tiers.TierConfig())
    version = tiers.publish(table, thresholds, tiers.TierConfig(), world["job_log.csv"], tmp_path)
    shown = open_in_browser(browser, version / "report.html", tmp_path / "tiers.png")
    assert (tmp_path / "tiers.png").stat().st_size > 10_000  # a real screenshot of a real page
    assert shown["page"] <= WIDTH, f"the page is {shown['page']} px wide"
    assert shown["table"] <= WIDTH, f"the table ends at {shown['table']:.0f} px"
    assert len(shown["headers"]) == shown["columns"] and all(shown["headers"])
    assert shown["headers"][:3] == ["technician id", "tier", "segment"]  # the answer first
