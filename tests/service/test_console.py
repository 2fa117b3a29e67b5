"""Every console page as a person sees it, in each headless Chromium installed: status 200, at least
one chart and one table, nothing requested outside the machine (every request goes through a recording
proxy), and a screenshot that is not blank."""

from __future__ import annotations

import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from service.server import RunningServer
from tests.support import headless_browser, installed_browsers
from tests.support.browser_proxy import recording_proxy
from tests.support.console_server import PAGES, console_server


@pytest.fixture(scope="module")
def console(model_dir: Path, world: dict[str, Path]) -> Iterator[RunningServer]:
    with console_server(model_dir, world) as running:
        yield running


def origin(running: RunningServer) -> str:
    assert running.console is not None
    return f"127.0.0.1:{running.console.server_address[1]}"


def browse(browser: str | None, url: str, screenshot: Path, proxy: list[str]) -> str:
    """The DOM after the page loaded; the screenshot written."""
    with headless_browser(browser) as command:
        flags = [*command, *proxy, "--hide-scrollbars", "--window-size=1400,1800"]
        subprocess.run(
            [*flags, f"--screenshot={screenshot}", url], check=True, capture_output=True, timeout=90
        )
        return subprocess.run(
            [*flags, "--dump-dom", url], check=True, capture_output=True, text=True, timeout=90
        ).stdout


@pytest.mark.parametrize(
    "browser", installed_browsers() or [None], ids=lambda p: Path(p).name if p else "none"
)
def test_every_page_has_a_chart_and_a_table_and_loads_nothing_from_outside(
    browser: str | None, console: RunningServer, tmp_path: Path
) -> None:
    for path in PAGES:
        url = f"http://{origin(console)}{path}"
        assert urllib.request.urlopen(url, timeout=30).status == 200
        with recording_proxy(origin(console)) as (recorded, proxy):
            shot = tmp_path / f"{path.strip('/') or 'overview'}.png"
            dom = browse(browser, url, shot, proxy)
        assert recorded.requests, "the browser did not go through the proxy"
        assert recorded.outside() == [], f"{path} asked for {recorded.outside()}"
        assert any(r.endswith("/static/console.css") for r in recorded.requests), path
        assert len(re.findall(r"<svg\b", dom)) >= 1 and len(re.findall(r"<table\b", dom)) >= 1, path
        pixels = image.imread(shot)[..., :3]
        assert shot.stat().st_size > 20_000 and float(np.std(pixels)) > 0.05, f"{path}: a blank screenshot"
