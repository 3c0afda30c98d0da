"""The pages in a real browser: Playwright driving Debian's Chromium (`apt-get install chromium`).

Click through as a person would: the plans page, a plan, a test's row, a cell, and that run's pytest-html
report, which must render (its script runs in the sandbox) while staying in an opaque origin.
Set TEP_SCREENSHOTS=DIR to keep the screenshots (docs/browser.png is the plan page's).
"""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Chromium is not installed (apt-get install -y chromium; .ci/run does)"
)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is in the test extra"
    )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    page.close()
    assert errors == []  # no script error in any page, the report's included


def shot(page, tmp_path, name):
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000  # something was drawn
    keep = os.environ.get("TEP_SCREENSHOTS")
    if keep:
        shutil.copy(path, Path(keep) / path.name)


def test_click_through_to_a_report(page, server, volume, tmp_path):
    page.goto(server.url("/"))
    assert page.title() == "Plans · tep reports"
    web_row = page.locator("tr", has=page.locator('a[href="/plans/qa/web"]'))
    assert "red since" in web_row.inner_text()
    assert web_row.locator(".cells a.Failed").count() == 3
    shot(page, tmp_path, "plans")

    page.click('a[href="/plans/qa/web"]')
    page.wait_for_url("**/plans/qa/web")
    assert page.locator("h1").inner_text().startswith("web")
    assert page.locator("#new-failures").inner_text().count("test_web.py::test_regress") == 1
    assert page.locator(".plots svg").count() == 2
    shot(page, tmp_path, "plan")

    page.click('table.grid a:text("test_web.py::test_regress")')  # a test's row
    page.wait_for_url("**/tests?id=*")
    assert page.locator("h1").inner_text() == "test_web.py::test_regress"
    assert [b.inner_text() for b in page.locator("table.list .badge").all()] == ["failed", "passed", "passed"]
    shot(page, tmp_path, "test")

    page.go_back()
    newest = volume.web_runs[-1]
    row = page.locator("table.grid tr", has=page.locator('a:text("test_web.py::test_broken")'))
    cell = row.locator(f'a.failed[href="/files/qa/web/{newest}/report.html"]')
    cell.click()  # a cell: that run's pytest-html report
    page.wait_for_url(f"**/files/qa/web/{newest}/report.html*")  # the report's script adds ?sort=...
    results = page.locator("#results-table")
    results.locator("text=test_web.py::test_broken").first.wait_for()  # rendered by the report's script
    assert page.evaluate("window.origin") == "null"  # sandboxed: no access to the browser's pages
    shot(page, tmp_path, "report")


def test_run_page_of_a_sharded_run(page, server, volume, tmp_path):
    page.goto(server.url(f"/plans/qa/sharded/runs/{volume.sharded_run}"))
    assert page.locator("h2", has_text="Shards").count() == 1
    page.click('a[href$="shard-1/report.html"]')
    page.locator("#results-table").wait_for()
    assert "test_s" in page.locator("#results-table").inner_text()
    page.goto(server.url(f"/plans/qa/broken/runs/{volume.broken_run}"))
    assert "no_such_module" in page.locator("pre.msg").first.inner_text()
    shot(page, tmp_path, "run")
