"""The translation guide's static site (`dlrosetta guide`) in a real headless Chromium, offline: headings in
order and alt text on every page, the picker and the translate view driven from the keyboard alone, and a
`#<phase>/<x>..<y>` address opening the right two columns in that order. Fails (never skips) without a
Chromium, like test_browser.py, whose browser fixture and page wrapper it uses."""
from __future__ import annotations

from pathlib import Path

import pytest
from test_browser import Page, browser, save_screenshot  # noqa: F401 - `browser` is a fixture

from reports import guide, idioms
from reports.sources import SourceLinks

HEADINGS_JS = """() => Array.from(document.querySelectorAll('h1, h2, h3, h4, h5, h6'))
    .filter(h => h.offsetParent !== null || h.getClientRects().length > 0).map(h => Number(h.tagName[1]))"""
SHOWN_JS = """() => Array.from(document.querySelectorAll('.code-head[data-col]')).filter(h => !h.hidden)
    .sort((a, b) => a.getBoundingClientRect().left - b.getBoundingClientRect().left)
    .map(h => h.getAttribute('data-col'))"""
TASK = "mnist_mlp"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("guide") / "site"
    guide.build_site(out, links=SourceLinks(relative="src/"))
    return out


@pytest.fixture(scope="module")
def columns() -> list[str]:
    return [c.key for c in idioms.guides([TASK])[0].columns]


def open_page(browser, path: Path, fragment: str = "", color_scheme: str = "light") -> Page:  # noqa: F811
    p = Page(browser)
    p.page.emulate_media(color_scheme=color_scheme)
    p.page.goto(path.resolve().as_uri() + (f"#{fragment}" if fragment else ""), wait_until="load")
    return p


def tab_to(page, selector: str, limit: int = 40, key: str = "Tab") -> None:
    """Press Tab (or Shift+Tab) until the focused element matches `selector`."""
    for _ in range(limit):
        page.keyboard.press(key)
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_headings_in_order_and_alt_text_on_every_page(browser, site):  # noqa: F811
    pages = sorted(site.glob("*.html"))
    assert len(pages) >= 2
    for path in pages:
        p = open_page(browser, path)
        levels = p.page.evaluate(HEADINGS_JS)
        assert levels and levels[0] == 1 and levels.count(1) == 1, (path.name, levels)
        jumps = [(a, b) for a, b in zip(levels, levels[1:]) if b > a + 1]
        assert not jumps, (path.name, levels)
        no_alt = p.page.evaluate("() => Array.from(document.images).filter(i => !(i.getAttribute('alt') || '').trim())"
                                 ".map(i => i.src)")
        assert not no_alt, (path.name, no_alt)
        assert not p.errors and not p.requests, (path.name, p.errors, p.requests)
        p.close()


def test_translate_view_from_the_keyboard(browser, site, columns, tmp_path):  # noqa: F811
    p = open_page(browser, site / f"{TASK}.html")
    page = p.page
    assert page.evaluate(SHOWN_JS) == columns[:2]
    tab_to(page, '.view-mode[data-mode="translate"]')
    page.keyboard.press("Enter")
    assert page.get_attribute(".guide", "data-mode") == "translate"
    assert page.evaluate(SHOWN_JS) == columns[:2]
    tab_to(page, 'input[name="to"]')  # the group's checked radio takes the focus
    page.keyboard.press("ArrowRight")
    assert page.evaluate(SHOWN_JS) == [columns[0], columns[2]]
    assert page.evaluate("location.hash") == f"#{columns[0]}..{columns[2]}"
    save_screenshot(page, tmp_path, "guide-translate.png")
    # back to the picker: Enter on a column's box adds it
    tab_to(page, '.view-mode[data-mode="compare"]', key="Shift+Tab")
    page.keyboard.press("Enter")
    tab_to(page, f'input[data-col="{columns[3]}"]')
    page.keyboard.press("Enter")
    assert page.evaluate(SHOWN_JS) == [columns[0], columns[1], columns[3]]
    page.keyboard.press("Space")
    assert page.evaluate(SHOWN_JS) == columns[:2]
    assert not p.errors and not p.requests, (p.errors, p.requests)
    p.close()


def test_a_pair_address_shows_those_two_columns(browser, site, columns, tmp_path):  # noqa: F811
    x, y = columns[-1], columns[1]  # right to left of the registry's order: the address decides
    g = idioms.guides([TASK])[0]
    phase = next(ph for ph in g.phases if ph != "setup")
    p = open_page(browser, site / f"{TASK}.html", guide.anchor(phase, x, y))
    page = p.page
    assert page.get_attribute(".guide", "data-mode") == "translate"
    assert page.evaluate(SHOWN_JS) == [x, y]
    cells = page.evaluate(f"""() => Array.from(document.querySelectorAll('#{phase} .code-cell'))
        .filter(c => !c.hidden).map(c => c.getAttribute('data-col'))""")
    assert sorted(cells) == sorted([x, y])
    # scrolled to the phase (smoothly: wait for it)
    page.wait_for_function(f"Math.abs(document.getElementById('{phase}').getBoundingClientRect().top) < 400",
                           timeout=5000)
    # a crosswalk link switches the view in place (a hash change, no reload)
    link = page.locator("table.crosswalk a[href*='..']").first
    if link.count():
        href = link.get_attribute("href")
        link.click()
        m = guide.ANCHOR.match(href.lstrip("#"))
        page.wait_for_function(f"document.querySelector('.guide').getAttribute('data-shown') === '{m['x']},{m['y']}'")
    save_screenshot(page, tmp_path, "guide-pair.png")
    assert not p.errors and not p.requests, (p.errors, p.requests)
    p.close()


def test_dark_and_print_styles_apply(browser, site, tmp_path):  # noqa: F811
    p = open_page(browser, site / f"{TASK}.html", color_scheme="dark")
    page = p.page
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 20, 26)", background  # --bg of the dark scheme
    save_screenshot(page, tmp_path, "guide-dark.png")
    page.emulate_media(media="print")
    assert page.evaluate("getComputedStyle(document.querySelector('.view-controls')).display") == "none"
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
    assert not p.errors, p.errors
    p.close()


def test_the_report_links_the_published_guide_and_keeps_its_own_copy(run_dir, tmp_path, monkeypatch):
    from reports import render

    monkeypatch.setenv("DLROSETTA_GUIDE_URL", "https://example.org/dlrosetta/")
    html = render.render([run_dir], tmp_path / "report.html").read_text(encoding="utf-8")
    assert '<a href="https://example.org/dlrosetta/">' in html
    assert 'class="guide" data-guide="mnist_mlp"' in html  # the embedded guide, readable offline
