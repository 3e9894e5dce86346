"""Browser-test plumbing: the app served on 127.0.0.1, and Debian's chromium driven by Playwright."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, CSP_VIOLATIONS


@pytest.fixture
def browser() -> Iterator[object]:
    """Debian's chromium, headless, through Playwright (never a downloaded browser).

    Whatever the pages did, none of it may have been refused by the app's Content-Security-Policy.
    """
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    CSP_VIOLATIONS.clear()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    assert CSP_VIOLATIONS == [], "\n".join(CSP_VIOLATIONS)
