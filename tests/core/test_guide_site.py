"""`dlrosetta guide`: the idiom guide as a static site, built in the core env (no framework installed):
every task has a page, every internal link and fragment of every generated page resolves, the task, phase
and pair addresses exist, and the notebooks are valid nbformat built from the files' `# %%` cells."""
from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

from harness import cli
from harness.matrix.registry import FRAMEWORKS, impl_path
from harness.matrix.tasks import TASKS
from reports import guide, idioms
from reports.sources import ROOT

FRAMEWORK_PACKAGES = ("torch", "tensorflow", "jax", "keras", "lightning", "flax", "haiku")


class Page(HTMLParser):
    """The ids, column keys and links (href/src) of one HTML file."""

    def __init__(self, path: Path):
        super().__init__()
        self.ids: set[str] = set()
        self.cols: set[str] = set()
        self.links: list[str] = []
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "div" and "code-head" in (a.get("class") or "") and a.get("data-col"):
            self.cols.add(a["data-col"])
        for key in ("href", "src"):
            if a.get(key):
                self.links.append(a[key])


def fragment_ok(fragment: str, page: Page) -> bool:
    """An element id, or the guide's pair address `x..y` / `phase/x..y` (its phase an id, x and y columns)."""
    m = guide.ANCHOR.match(fragment)
    if not m:
        return fragment in page.ids
    return (m["phase"] is None or m["phase"] in page.ids) and {m["x"], m["y"]} <= page.cols


BUILD = """
import json, sys, time
from reports import guide
from reports.sources import SourceLinks
t0 = time.perf_counter()
site = guide.build_site(sys.argv[1], links=SourceLinks(relative="src/"))
print(json.dumps({"seconds": time.perf_counter() - t0, "pages": len(site.pages),
                  "imported": [p for p in sys.argv[2:] if p in sys.modules]}))
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Built in a fresh interpreter (so that what it imports is its own), with no repository web view: file
    links go to copies inside the site, so that every one of them can be checked."""
    out = tmp_path_factory.mktemp("guide") / "site"
    done = subprocess.run([sys.executable, "-c", BUILD, str(out), *FRAMEWORK_PACKAGES], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, json.loads(done.stdout.strip().splitlines()[-1])


def test_builds_in_seconds_importing_no_framework(site):
    out, built = site
    assert built["imported"] == [], f"building the guide imported {built['imported']}"
    print(f"site built in {built['seconds']:.2f} s")
    assert built["pages"] == len(TASKS) + 1 and (out / "index.html").is_file()


def test_the_command(tmp_path, capsys):
    assert cli.main(["guide", "-o", str(tmp_path / "site"), "--tasks", "x2_descent"]) == 0
    assert "guide: " in capsys.readouterr().out
    assert (tmp_path / "site" / "x2_descent.html").is_file() and not (tmp_path / "site" / "mnist_mlp.html").exists()


def test_every_task_has_a_page_with_its_columns_and_phases(site):
    out = site[0]
    for task in TASKS:
        page = Page(out / f"{task}.html")
        expected = {FRAMEWORKS[f].module for f in FRAMEWORKS if impl_path(task, f)}
        assert page.cols == expected, task
        (g,) = idioms.guides([task])
        assert set(g.phases) <= page.ids, (task, set(g.phases) - page.ids)
        assert {"code", "crosswalk"} <= page.ids
        assert {f"concept-{slug}" for slug in g.crosswalk} <= page.ids
        assert f'href="{task}.html"' in (out / "index.html").read_text()


def test_every_internal_link_and_fragment_resolves(site):
    out = site[0]
    pages = {p: Page(p) for p in out.rglob("*.html")}
    assert len(pages) == len(TASKS) + 1
    broken, checked = [], 0
    for path, page in pages.items():
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or link.startswith("//"):
                continue  # the published guide's address (from the origin remote) in the footer
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            checked += 1
            if not target.is_file():
                broken.append((path.name, link))
            elif parts.fragment and not fragment_ok(unquote(parts.fragment), pages.get(target) or Page(target)):
                broken.append((path.name, link))
    assert not broken, broken[:20]
    assert checked > 100
    src = [link for page in pages.values() for link in page.links if link.startswith("src/implementations/")]
    assert len(src) > 100  # the file and phase links, to the copies


def test_pair_addresses_name_the_scheme(site):
    """The crosswalk links a marked line to `#<phase>/<x>..<y>`; the index links each column's pair view."""
    out = site[0]
    page = Page(out / "mnist_mlp.html")
    pairs = [link for link in page.links if guide.ANCHOR.match(link.lstrip("#"))]
    g = idioms.guides(["mnist_mlp"])[0]
    if g.crosswalk:
        assert any("/" in link for link in pairs), pairs[:5]
    index = Page(out / "index.html")
    assert any(link.startswith("mnist_mlp.html#") and ".." in link for link in index.links)
    assert guide.anchor("step", "pytorch", "jax") == "step/pytorch..jax"
    assert guide.ANCHOR.match("step/pytorch..jax").group("phase", "x", "y") == ("step", "pytorch", "jax")


def test_notebooks_are_valid_and_built_from_the_cells(site):
    out = site[0]
    found = sorted(out.glob("notebooks/*/*.ipynb"))
    expected = sum(len(g.columns) for g in idioms.guides())
    assert len(found) == expected
    for path in found:
        nb = nbformat.read(str(path), as_version=4)
        nbformat.validate(nb)
        task, module = path.parent.name, path.stem
        titles = [c.metadata.get("title") for c in nb.cells if c.cell_type == "code"]
        source = (out / "src" / "implementations" / task / f"{module}.py").read_text()
        for phase in idioms.MARKER.findall(source):
            assert phase.lower() in [str(t).lower() for t in titles], (path, phase)
        assert f"make_spec({task!r}, \"smoke\"" in nb.cells[-1].source
        compile(nb.cells[-1].source, str(path), "exec")
    assert f'href="notebooks/x2_descent/pytorch.ipynb"' in (out / "x2_descent.html").read_text()


def test_bad_input_is_one_line(tmp_path, capsys):
    assert cli.main(["guide", "-o", str(tmp_path / "s"), "--tasks", "nope"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    (tmp_path / "file").write_text("x")
    assert cli.main(["guide", "-o", str(tmp_path / "file")]) == 2


MARKED = {
    "pytorch": '''"""x² in PyTorch."""
import torch


# %% step
def step(x, lr):
    f(x).backward()  # concept: gradient
    with torch.no_grad():
        x -= lr * x.grad
    x.grad.zero_()  # reset every step  # concept: zero-grad
    return x
''',
    "jax": '''"""x² in JAX."""
import jax

# concept-absent: zero-grad: jax.grad returns the gradient, nothing accumulates


# %% step
def step(x, lr):
    return x - lr * jax.grad(f)(x)  # concept: gradient
''',
}


def test_the_crosswalk_table_links_each_marked_line_to_its_phase(tmp_path):
    """Files with markers (written here, so the test does not wait on the real files' markers): each marked
    line becomes a cell linking to `#<phase>/<other>..<column>`, an absence shows its reason, the marker
    comment is taken off the shown code."""
    from reports.sources import SourceLinks

    links = SourceLinks(relative="src/")
    columns = []
    for module, text in MARKED.items():
        path = tmp_path / "implementations" / "x2_descent" / f"{module}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        columns.append(idioms.build_column("x2_descent", module, [module], path, tmp_path, links))
    g = idioms.Guide("x2_descent", "x²", columns, ["setup", "step"])
    rows = guide.crosswalk_rows(g, links)
    assert [r["slug"] for r in rows] == ["gradient", "zero-grad"]
    html = guide.task_page(guide.environment(), g, rows, g.problems(), guide.common_context([g]))
    out = tmp_path / "x2_descent.html"
    out.write_text(html)
    page = Page(out)
    marks = [link for link in page.links if guide.ANCHOR.match(link.lstrip("#"))]
    assert "#step/jax..pytorch" in marks and "#step/pytorch..jax" in marks, marks
    assert all(fragment_ok(link.lstrip("#"), page) for link in marks)
    assert {"concept-gradient", "concept-zero-grad"} <= page.ids
    assert "jax.grad returns the gradient, nothing accumulates" in html
    assert "# concept:" not in html.split('id="crosswalk"')[0]  # the code shows no marker comments
    assert g.problems() == []


TUNED_FILE = '''"""A column with a tuned variant."""
VARIANTS = {"plain": "the idiom", "tuned_fast": "the same model, made fast"}


# %% model
def build_model(spec):
    return "idiomatic model"


# %% tuned-model
# what it changes and why: the guide shows this cell beside the model cell above
def build_tuned(spec):
    return "fast model"
'''


def test_the_tuned_cell_is_shown_beside_the_primary_phase(impl_package, tmp_path):
    impl_package("tuned_impls", "x2_descent", TUNED_FILE)
    (g,) = idioms.guides(["x2_descent"])
    (col,) = g.tuned
    assert col.tuned_pairs == [("model", "tuned-model")] and list(col.tuned_variants) == ["tuned_fast"]
    assert g.phase_titles["tuned-model"] == "tuned: model"
    page = guide.task_page(guide.environment(), g, [], [], guide.common_context([g]))
    pair = page[page.index('class="tuned-pair"'):]
    pair = pair[:pair.index("</section>")]
    # the primary's model cell on the left, the tuned cell on the right, in one two-column row
    assert pair.index("idiomatic model") < pair.index("fast model") and 'style="--cols: 2"' in pair
    assert "tuned_fast" in pair and 'href="#tuned-x2_descent"' in page


def test_every_tuned_variant_has_its_cell_in_the_guide(site):
    """A `tuned…` variant of a real file comes with a `# %% tuned-<phase>` cell (in its file or in the file it
    imports from), and the task's page pairs it with the primary's phase."""
    out = site[0]
    for task in TASKS:
        (g,) = idioms.guides([task])
        page = (out / f"{task}.html").read_text()
        for col in g.columns:
            if col.tuned_variants and col.tuned_pairs:
                assert f'data-tuned="{col.key}"' in page, (task, col.key)
        tuned_files = {c.key for c in g.columns if c.tuned_variants}
        pairs_anywhere = {c.key for gg in idioms.guides() for c in gg.columns if c.tuned_pairs}
        assert tuned_files <= pairs_anywhere, (task, tuned_files - pairs_anywhere)
