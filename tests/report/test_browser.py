"""The report in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright), offline.

Fails (never skips) when the browser is missing: `apt-get install -y chromium`. Saves screenshots
under pytest's tmp dir, printed, and copies them to $DLROSETTA_SCREENSHOT_DIR when set.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

def find_browser() -> str | None:
    """A Chromium: $DLROSETTA_BROWSER (or the older $DLROSETTA_CHROMIUM), then chromium, chromium-browser or
    google-chrome on PATH, then one in Playwright's own browser folder (~/.cache/ms-playwright)."""
    import glob
    import shutil

    for var in ("DLROSETTA_BROWSER", "DLROSETTA_CHROMIUM"):
        if os.environ.get(var):
            return os.environ[var]
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found
    folder = os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or str(Path.home() / ".cache" / "ms-playwright")
    found = sorted(glob.glob(f"{folder}/chromium*/chrome-linux*/chrome"))
    return found[-1] if found else None


CHROMIUM = find_browser()
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1366, "height": 768}

# every [data-figure] must hold a drawn Plotly graph with at least one visible trace
BROKEN_CHARTS_JS = """() => Array.from(document.querySelectorAll('[data-figure]')).filter(el =>
    !el.classList.contains('js-plotly-plot') || !el.querySelector('svg.main-svg') || !el._fullData
    || el._fullData.length === 0 || el.querySelectorAll('g.trace, g.barlayer .point, g.scatterlayer .trace').length === 0
  ).map(el => el.id)"""


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM and Path(CHROMIUM).exists(), (
        "no Chromium found (PATH, Playwright's folder, $DLROSETTA_BROWSER): install one, "
        "e.g. `sudo apt-get install chromium` on Debian/Ubuntu")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Page:
    """A page that records console errors, uncaught exceptions and every network request."""

    def __init__(self, browser):
        self.context = browser.new_context(viewport=VIEWPORT, offline=True)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}")
                     if m.type in ("error", "assert") else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("requestfailed", lambda r: self.errors.append(f"requestfailed: {r.url}"))
        self.page.route("**/*", self._route)

    def _route(self, route):
        url = route.request.url
        if url.startswith(("file:", "data:", "about:", "blob:")):
            route.continue_()
        else:
            self.requests.append(url)
            route.abort()

    def open(self, path: Path) -> None:
        self.page.goto(path.resolve().as_uri(), wait_until="load")
        self.page.wait_for_function("document.body.getAttribute('data-charts-drawn') !== null"
                                    " || document.body.getAttribute('data-charts-failed') !== null", timeout=60_000)

    def close(self):
        self.context.close()


def check_page(p: Page) -> list[str]:
    """Everything wrong with a loaded report page (empty when all is well)."""
    problems = list(p.errors)
    problems += [f"network request: {u}" for u in p.requests]
    body = p.page.locator("body")
    total = int(body.get_attribute("data-charts") or 0)
    drawn = int(body.get_attribute("data-charts-drawn") or 0)
    if total == 0 or drawn != total:
        problems.append(f"charts drawn: {drawn} of {total}")
    broken = p.page.evaluate(BROKEN_CHARTS_JS)
    if broken:
        problems.append(f"charts without a drawn trace: {broken}")
    return problems


def save_screenshot(page, tmp_path: Path, name: str, **kw) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), **kw)
    print(f"screenshot: {path}")
    if target := os.environ.get("DLROSETTA_SCREENSHOT_DIR"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)
        print(f"screenshot: {Path(target) / name}")
    return path


def test_report_in_chromium(browser, report_path, tmp_path):
    p = Page(browser)
    t0 = time.perf_counter()
    p.open(report_path)
    print(f"loaded and drew charts in {time.perf_counter() - t0:.1f}s")
    page = p.page
    assert check_page(p) == []

    # the sections are there and readable at 1366 x 768: nothing wider than the viewport but tables' scrollers
    for section in ("overview", "matrix", "defaults", "idioms", "data"):
        assert page.locator(f"#{section}").is_visible(), section
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT["width"]
    save_screenshot(page, tmp_path, "report-top.png")

    # hover shows a label, a legend click hides a series (toggle)
    first = page.locator("[data-figure]").first
    first.scroll_into_view_if_needed()
    point = first.locator("g.scatterlayer .point, g.barlayer .point").first
    box = point.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector(f"#{first.get_attribute('id')} g.hoverlayer g.hovertext", timeout=5_000)
    legend_items = first.locator("g.legend g.traces")
    if legend_items.count() > 1:
        before = page.evaluate("(id) => document.getElementById(id)._fullData.map(t => t.visible)",
                               first.get_attribute("id"))
        legend_items.first.locator("rect.legendtoggle").click()
        page.wait_for_timeout(800)  # Plotly waits out its double-click delay before toggling
        after = page.evaluate("(id) => document.getElementById(id)._fullData.map(t => t.visible)",
                              first.get_attribute("id"))
        assert after != before and "legendonly" in after

    # the idiom guide: pick a task, tick a third framework, untick the first
    tabs = page.locator(".guide-tab")
    assert tabs.count() >= 1
    tab = page.locator('.guide-tab[data-guide="x2_descent"]')
    tab.click()
    guide = page.locator('.guide[data-guide="x2_descent"]')
    assert guide.is_visible()
    boxes = guide.locator(".guide-picker input[data-col]")
    assert boxes.count() >= 2
    keys = [boxes.nth(i).get_attribute("data-col") for i in range(boxes.count())]
    checked = [boxes.nth(i).is_checked() for i in range(boxes.count())]
    assert sum(checked) == min(2, len(keys))
    visible = lambda key: guide.locator(f'details[open] .code-cell[data-col="{key}"]').first.is_visible()  # noqa: E731
    assert visible(keys[0]) and visible(keys[1])
    if len(keys) > 2:
        assert not visible(keys[2])
        boxes.nth(2).check()
        assert visible(keys[2])
        assert guide.evaluate("g => getComputedStyle(g).getPropertyValue('--cols').trim()") == "3"
    boxes.nth(0).uncheck()
    assert not visible(keys[0]) and visible(keys[1])
    page.evaluate("document.getElementById('idioms').scrollIntoView({behavior: 'instant'})")
    page.wait_for_timeout(300)
    save_screenshot(page, tmp_path, "report-idioms.png")
    other = page.locator(".guide-tab").nth(1)
    if other.count():
        other.click()
        assert not guide.is_visible()
        assert page.locator(f'.guide[data-guide="{other.get_attribute("data-guide")}"]').is_visible()

    page.evaluate("window.scrollTo(0, 0)")
    save_screenshot(page, tmp_path, "report.png", full_page=True)
    assert p.errors == [] and p.requests == []
    p.close()


def test_a_broken_chart_fails_the_check(browser, report_path, tmp_path):
    """The check above is not vacuous: one corrupted figure is caught."""
    html = report_path.read_text(encoding="utf-8")
    marker = 'type="application/json" id="chart-'
    i = html.index(marker)
    j = html.index('{"data":[', i)
    broken = tmp_path / "broken.html"
    broken.write_text(html[:j] + '{"data":[{"type":"no-such-trace"' + html[j + len('{"data":['):], encoding="utf-8")
    p = Page(browser)
    p.open(broken)
    problems = check_page(p)
    p.close()
    assert problems, "a corrupted chart went unnoticed"


def test_comparison_report_in_chromium(browser, run_dir, tmp_path):
    """`dlrosetta report A B` draws too: the run against itself (every cell within noise)."""
    from reports import render

    out = render.render([run_dir, run_dir], tmp_path / "comparison.html")
    p = Page(browser)
    p.open(out)
    assert check_page(p) == []
    assert p.page.locator("#comparison").is_visible()
    assert p.page.locator("#comparison .chip.cmp-same").count() > 0
    p.page.evaluate("document.getElementById('comparison').scrollIntoView({behavior: 'instant'})")
    p.page.wait_for_timeout(300)
    save_screenshot(p.page, tmp_path, "comparison.png")
    p.close()
