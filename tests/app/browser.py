"""Real Chromium (Debian's, driven by Playwright) for the workbench's pages, and the steps every
browser test takes. Screenshots of each page land in tests/artifacts/screens/ as the tests' artifacts."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SCREENS = Path(__file__).resolve().parents[1] / "artifacts" / "screens"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed: scripts/bootstrap.sh installs it")
    SCREENS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


def sign_in(browser: Any, url: str, token: str, shot: str) -> Any:
    page = browser.new_context().new_page()
    page.goto(f"{url}/signin")
    page.screenshot(path=SCREENS / f"{shot}-signin.png", full_page=True)
    page.fill("input[name=token]", token)
    follow(page, "button[type=submit]")
    return page


def follow(page: Any, selector: str) -> None:
    # A click returns once its navigation starts; the page asserted on next must be the one it lands on.
    with page.expect_navigation():
        page.click(selector)
