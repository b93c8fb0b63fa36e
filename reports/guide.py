"""`dlrosetta guide [-o DIR]`: the idiom guide on its own, as a static site (no run dir, no framework).

Read from the implementation files (reports/idioms.py, reports/crosswalk.py), never imported, so it builds
in the core env with only the `guide` extra (Jinja2, Pygments, jupytext, nbformat), in seconds:

    DIR/index.html                          every task, its columns, their notebooks
    DIR/<task>.html                         one page per task: compare (pick columns) or translate (X -> Y)
    DIR/notebooks/<task>/<module>.ipynb     each file as a notebook (its `# %%` cells) + a smoke-run cell
    DIR/src/implementations/...             copies of the files, when no repository web view is known
    DIR/static/                             CSS (light, dark, print) and the page script

Stable addresses on a task page (the URL fragment; see guide.js):

    <task>.html#<phase>            a phase (`step`, `train`, ...) in the compare view
    <task>.html#<x>..<y>           translate view: column x beside column y (module names: pytorch, jax, ...)
    <task>.html#<phase>/<x>..<y>   translate view at that phase
    <task>.html#concept-<slug>     a row of the crosswalk table
"""
from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import jinja2
import jupytext
import nbformat
from pygments.formatters import HtmlFormatter

from harness.matrix.registry import FRAMEWORKS, impl_path
from harness.matrix.tasks import TASKS
from reports import crosswalk, idioms
from reports.sources import ROOT, SourceLinks, site_url

HERE = Path(__file__).resolve().parent
STATIC = ("report.css", "guide.css", "guide.js")
DARK_STYLE = "github-dark"
ANCHOR = re.compile(r"^(?:(?P<phase>[a-z][\w-]*)/)?(?P<x>[a-z][\w-]*)\.\.(?P<y>[a-z][\w-]*)$")

# The notebook's last cell: the cells above run on the smoke profile, called the way harness/running/cell.py calls
# an implementation (its `train` with a spec, the data and a Recorder).
DRIVER_HEAD = '''# Run the cells above on the benchmark's smoke settings (what `dlrosetta run --profile smoke` trains),
# called the way harness/running/cell.py calls an implementation.
import sys

from harness.matrix import data as harness_data
from harness.matrix.tasks import make_spec
from harness.measuring.measure import Recorder
from harness.running import cell

spec = make_spec({task!r}, "smoke", variant=next(iter(VARIANTS)))
'''
DRIVERS = {
    "x2": '''trajectory = train(spec, Recorder("x2"))
print(f"x after {{spec.steps}} steps: {{trajectory[-1]:.6g}} (exact: {{spec.exact_trajectory()[-1]:.6g}})")
''',
    "linreg": '''data = harness_data.load(spec)
model = train(build_model(spec), spec, data, Recorder("linreg", epochs=spec.epochs))
print(f"test MSE after {{spec.epochs}} epochs: {{cell.mse(predict(model, data.x_test), data.y_test):.6g}}")
''',
    "mnist": '''data = harness_data.load(spec)
model = train(build_model(spec), spec, data, Recorder("mnist", epochs=spec.epochs,
                                                        steps_per_epoch=data.steps_per_epoch))
print(cell.evaluate_mnist(sys.modules[__name__], model, data))
''',
}
KERAS_SETUP = '''import os

os.environ.setdefault("KERAS_BACKEND", {backend!r})  # or "jax", "torch": Keras reads it when imported
'''


@dataclass
class Site:
    out: Path
    pages: list[Path]
    notebooks: list[Path]
    seconds: float
    problems: list[str]


def anchor(phase: str | None = None, x: str | None = None, y: str | None = None) -> str:
    """The fragment of a task page (see the module docstring)."""
    pair = f"{x}..{y}" if x and y else ""
    return "/".join(p for p in (phase, pair) if p)


def notebook(task: str, col: idioms.Column) -> nbformat.NotebookNode:
    """The implementation file as a notebook: a title cell, its `# %%` cells (jupytext), a smoke-run cell."""
    path = impl_path(task, col.frameworks[0])
    nb = jupytext.reads(path.read_text(encoding="utf-8"), fmt="py:percent")
    title = TASKS[task].title if task in TASKS else task
    head = [nbformat.v4.new_markdown_cell(f"# {title}: {col.title}\n\n{col.summary}\n\n"
                                          f"From `{col.path}`. It needs the repository importable (the last "
                                          f"cell calls the harness) and the framework: the tox env "
                                          f"`{FRAMEWORKS[col.frameworks[0]].family}` has both.")]
    backend = FRAMEWORKS[col.frameworks[0]].keras_backend
    if backend:
        head.append(nbformat.v4.new_code_cell(KERAS_SETUP.format(backend=backend).strip()))
    kind = TASKS[task].kind
    driver = nbformat.v4.new_code_cell((DRIVER_HEAD.format(task=task) + DRIVERS[kind].format()).strip())
    nb.cells = head + nb.cells + [driver]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata.pop("jupytext", None)
    return nb


def ref_column(g: idioms.Guide, key: str) -> str:
    """The column another column is translated from by default: the task's first other one."""
    return next((c.key for c in g.columns if c.key != key), key)


def crosswalk_rows(g: idioms.Guide, links: SourceLinks) -> list[dict]:
    """The crosswalk table of a task for the page: per concept, per column, the marked lines (each linking
    to its phase, translated from the task's first other column) or why there are none."""
    rows = []
    for slug, row in g.crosswalk.items():
        title, question = crosswalk.CONCEPTS.get(slug, (slug, ""))
        cells = []
        for col in g.columns:
            cell = row[col.key]
            items = []
            for m in cell.marks:
                phase = None if cell.inherited_from else col.phase_of(m.line)
                pair = "#" + anchor(phase, ref_column(g, col.key), col.key)
                href = pair if phase else links.file(m.path, m.line) or pair
                items.append({"code": m.code, "line": m.line, "href": href, "phase": phase})
            cells.append({"col": col.key, "items": items, "absent": cell.absent, "from": cell.inherited_from})
        rows.append({"slug": slug, "title": title, "question": question, "cells": cells})
    return rows


def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates" / "guide")),
                              autoescape=True, trim_blocks=True, lstrip_blocks=True)


def highlight_css() -> str:
    """Pygments colours: the report's light style, a dark one under prefers-color-scheme."""
    dark = HtmlFormatter(cssclass=idioms.CSS_CLASS, style=DARK_STYLE).get_style_defs(f".{idioms.CSS_CLASS}")
    return f"{idioms.highlight_css()}\n@media screen and (prefers-color-scheme: dark) {{\n{dark}\n}}\n"


def common_context(guides: list[idioms.Guide]) -> dict:
    """What every page's template gets: the tasks (for the navigation), the published address, helpers."""
    return {"guides": guides, "site_url": site_url(), "generated": time.strftime("%Y-%m-%d %H:%M"),
            "descriptions": {t: TASKS[t].description for t in TASKS}, "anchor": anchor, "ref": ref_column}


def task_page(env: jinja2.Environment, g: idioms.Guide, rows: list[dict], problems: list[str], common: dict) -> str:
    """A task's page: the compare and translate views (the first two columns shown), then the crosswalk."""
    return env.get_template("task.html.j2").render(**common, g=g, rows=rows, problems=problems,
                                                   default_pair=[c.key for c in g.columns[:2]])


def build_site(out, tasks=None, repo_url: str | None = None, ref: str | None = None,
               links: SourceLinks | None = None) -> Site:
    """Write the site into `out` (created; files already there are overwritten, others kept). File and line
    links go to `repo_url` at `ref` (default: the origin remote at HEAD), else to copies inside the site."""
    t0 = time.perf_counter()
    out = Path(out)
    links = links or SourceLinks.for_site(repo_url, ref)
    guides = idioms.guides(tasks, links=links)
    env = environment()
    (out / "static").mkdir(parents=True, exist_ok=True)
    for name in STATIC:
        shutil.copyfile(HERE / "static" / name, out / "static" / name)
    (out / "static" / "highlight.css").write_text(highlight_css(), encoding="utf-8")

    common = common_context(guides)
    pages, notebooks, problems = [out / "index.html"], [], []
    pages[0].write_text(env.get_template("index.html.j2").render(**common), encoding="utf-8")
    for g in guides:
        rows, found = crosswalk_rows(g, links), g.problems()
        for col in g.columns:
            target = out / "notebooks" / g.task / f"{col.key}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook(g.task, col), str(target))
            notebooks.append(target)
        if links.copies_files:  # the files the page links to (its columns', and those they inherit from)
            for path in {c.path for c in g.columns} | {c["from"] for r in rows for c in r["cells"] if c["from"]}:
                copy = out / links.file(path)
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(ROOT / path, copy)
        page = out / f"{g.task}.html"
        page.write_text(task_page(env, g, rows, found, common), encoding="utf-8")
        pages.append(page)
        problems += found
    return Site(out, pages, notebooks, time.perf_counter() - t0, problems)
