"""What the browser tests share: Debian's Chromium through Playwright, pages that record their
JavaScript errors and Content-Security-Policy violations, and where screenshots go."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from rag.config import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")  # Playwright cannot download its own browser here
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = PROJECT_ROOT / "artifacts"
JS_ERRORS: list[object] = []


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium: apt-get install -y chromium")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def no_javascript_errors() -> Iterator[None]:
    """Fails the test on any uncaught JavaScript error of a page made by :func:`new_page`."""
    JS_ERRORS.clear()
    yield
    assert not JS_ERRORS, f"JavaScript errors: {JS_ERRORS}"


def new_page(browser: Browser, width: int = 1280, height: int = 800, scheme: str = "light") -> Page:
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)  # type: ignore[arg-type]
    page = context.new_page()
    page.on("pageerror", lambda exc: JS_ERRORS.append(exc))
    return page


def csp_violations(page: Page) -> list[str]:
    found: list[str] = []
    page.on(
        "console", lambda m: found.append(m.text) if "Content Security Policy" in m.text else None
    )
    return found
