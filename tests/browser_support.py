"""Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by Playwright (never `playwright install`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-quic"]


def require_chromium() -> None:
    """Skip the calling module where Chromium is missing, except in CI (where its absence is a failure)."""
    if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
        pytest.skip("Chromium is not installed here (make test installs it with scripts/browser.sh)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield instance
        instance.close()


def activate_in_app(page: Any, person: Any, password: str) -> None:
    """On a phone that never ran the app: ID number, name and password, the demo face check, and in to the home page."""
    page.fill("#certno", person.certno)
    page.fill("#name", person.psn_name)
    page.fill("#password", password)
    page.wait_for_selector("#activate-extra", state="visible")
    page.click("#face-button")
    page.wait_for_function("() => document.querySelector('#face-status').textContent.includes('已采集')")
    page.click("#login-button")
    page.wait_for_selector("#view-home:not([hidden])")
