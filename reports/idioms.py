"""The idiom guide: each task's implementation files, split on their `# %% <phase>` cell markers and
syntax-highlighted with Pygments, so that the same phase of every framework lines up side by side.

Everything is generated from the files themselves (found through the registry, never imported). Concept
markers (`# concept: ...`, see reports/crosswalk.py) are taken off the shown lines, which carry the concept
as a class and a title instead.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from harness.matrix.registry import FRAMEWORKS, impl_path, is_tuned
from harness.matrix.tasks import TASKS
from reports import crosswalk
from reports.sources import SourceLinks

MARKER = re.compile(r"^#\s*%%\s*([A-Za-z][\w-]*)")
PREAMBLE = "setup"
PHASE_ORDER = (PREAMBLE, "model", "loss", "step", "train", "evaluate", "save", "export", "deploy", "precision")
PHASE_TITLES = {
    PREAMBLE: "imports, variants",
    "model": "model",
    "loss": "loss",
    "step": "update step",
    "train": "training loop",
    "evaluate": "evaluation",
    "save": "save / load",
    "export": "ONNX export",
    "deploy": "deployment export",
    "precision": "precision (bf16 / mixed)",
}
TUNED = "tuned-"  # `# %% tuned-<phase>`: a tuned variant's code, shown beside the primary's <phase>
CSS_CLASS = "hl"


def phase_title(phase: str) -> str:
    if phase.startswith(TUNED):
        return f"tuned: {PHASE_TITLES.get(phase[len(TUNED):], phase[len(TUNED):])}"
    return PHASE_TITLES.get(phase, phase)


@dataclass
class Column:
    key: str  # an id: the implementation module ("pytorch", "keras", ...)
    title: str
    path: str  # shown, relative to the repository
    lines: int
    summary: str  # the module docstring's first paragraph
    variants: dict
    frameworks: list[str]  # the report columns this file serves (Keras: three backends)
    phases: dict[str, Markup] = field(default_factory=dict)
    phase_lines: dict[str, tuple[int, int]] = field(default_factory=dict)
    marks: crosswalk.FileMarks | None = None
    url: str | None = None  # the file on the repository (or its copy in the site)
    phase_urls: dict[str, str] = field(default_factory=dict)

    def phase_of(self, line: int) -> str | None:
        return next((p for p, (a, b) in self.phase_lines.items() if a <= line <= b), None)

    @property
    def tuned_pairs(self) -> list[tuple[str, str]]:
        """[(the primary's phase, the tuned cell beside it)] for each `# %% tuned-<phase>` cell of the file."""
        return [(p[len(TUNED):], p) for p in self.phases if p.startswith(TUNED)]

    @property
    def tuned_variants(self) -> dict:
        return {k: v for k, v in self.variants.items() if is_tuned(k)}


@dataclass
class Guide:
    task: str
    title: str
    columns: list[Column]
    phases: list[str]
    site_url: str | None = None  # the published guide, linked from the report

    @property
    def crosswalk(self) -> dict[str, dict[str, crosswalk.Cell]]:
        return crosswalk.table({c.key: c.marks for c in self.columns}, file_marks, self.task)

    def problems(self) -> list[str]:
        return crosswalk.problems(self.task, {c.key: c.marks for c in self.columns}, file_marks)

    @property
    def phase_titles(self) -> dict:
        return {p: phase_title(p) for p in self.phases}

    @property
    def tuned(self) -> list[Column]:
        """The columns with a tuned variant's cells: the guide shows each beside the primary's code."""
        return [c for c in self.columns if c.tuned_pairs]


def split_phases(source: str) -> list[tuple[str, int, str]]:
    """[(phase, first line number, text)] in file order; text before the first marker is `setup`.
    The marker line itself is dropped (the guide shows it as the row heading)."""
    lines = source.splitlines()
    parts: list[tuple[str, int, list[str]]] = [(PREAMBLE, 1, [])]
    for number, line in enumerate(lines, start=1):
        m = MARKER.match(line.strip())
        if m:
            parts.append((m.group(1).lower(), number + 1, []))
        else:
            parts[-1][2].append(line)
    out = []
    for phase, start, body in parts:
        while body and not body[0].strip():  # trim blank lines, keeping line numbers right
            body.pop(0)
            start += 1
        while body and not body[-1].strip():
            body.pop()
        if body:
            out.append((phase, start, "\n".join(body)))
    return out


def _formatter(start: int, prefix: str) -> HtmlFormatter:
    # one <span id=prefix-N> per line, so that long lines wrap with a hanging indent (see report.css)
    return HtmlFormatter(cssclass=CSS_CLASS, linenos="inline", linenostart=start, wrapcode=True, linespans=prefix)


def highlight_css() -> str:
    return HtmlFormatter(cssclass=CSS_CLASS, style="friendly").get_style_defs(f".{CSS_CLASS}")


def file_info(source: str) -> tuple[str, dict]:
    """(first paragraph of the docstring, VARIANTS) read with ast; the file is never imported."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return "", {}
    doc = " ".join((ast.get_docstring(tree) or "").strip().split("\n\n")[0].split())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "VARIANTS" for t in node.targets):
            try:
                found = dict(ast.literal_eval(node.value))
            except ValueError:
                found = {}
    return doc, found


def module_title(module: str, frameworks: list[str]) -> str:
    if len(frameworks) == 1:
        return FRAMEWORKS[frameworks[0]].title
    titles = [FRAMEWORKS[f].title for f in frameworks]
    head = titles[0].split(" · ")[0]
    backends = [t.split(" · ", 1)[1] for t in titles if " · " in t]
    return f"{head} ({' · '.join(backends)})" if backends else head


def shown_path(task: str, path: Path, root: Path | None) -> str:
    try:
        return str(path.resolve().relative_to(root)) if root else path.name
    except ValueError:
        return f"implementations/{task}/{path.name}"


def line_prefix(task: str, module: str) -> str:
    """The id prefix of a column's line spans: `<prefix>-<line number>`."""
    return f"src-{task}-{module}".replace("_", "-")


def tag_concepts(html: str, prefix: str, marks: crosswalk.FileMarks) -> str:
    """Give each marked line's span the concepts it realises (class, data attribute, tooltip)."""
    by_line: dict[int, list[str]] = {}
    for concept, found in marks.marks.items():
        for m in found:
            by_line.setdefault(m.line, []).append(concept)
    for line, names in by_line.items():
        title = ", ".join(crosswalk.CONCEPTS.get(n, (n,))[0] for n in names)
        html = html.replace(f'<span id="{prefix}-{line}">',
                            f'<span id="{prefix}-{line}" class="concept" data-concept="{" ".join(names)}" '
                            f'title="concept: {title}">', 1)
    return html


def build_column(task: str, module: str, frameworks: list[str], path: Path, root: Path | None,
                 links: SourceLinks | None = None) -> Column:
    source = path.read_text(encoding="utf-8", errors="replace")
    summary, found_variants = file_info(source)
    shown = shown_path(task, path, root)
    links = links or SourceLinks()
    col = Column(key=module, title=module_title(module, frameworks), path=shown,
                 lines=len(source.splitlines()), summary=summary, variants=found_variants, frameworks=frameworks,
                 marks=crosswalk.parse(source, shown), url=links.file(shown))
    lexer = PythonLexer()
    prefix = line_prefix(task, module)
    display = "\n".join(crosswalk.strip_marker(line) for line in source.splitlines())
    for phase, start, text in split_phases(display):
        html = tag_concepts(highlight(text, lexer, _formatter(start, prefix)), prefix, col.marks)
        if phase in col.phases:  # a phase marked twice: both parts, in order
            col.phases[phase] = Markup(str(col.phases[phase]) + html)
            col.phase_lines[phase] = (col.phase_lines[phase][0], start + text.count("\n"))
        else:
            col.phases[phase] = Markup(html)
            col.phase_lines[phase] = (start, start + text.count("\n"))
    col.phase_urls = {p: links.file(shown, a, b) for p, (a, b) in col.phase_lines.items()}
    return col


def guides(tasks=None, links: SourceLinks | None = None, site_url: str | None = None) -> list[Guide]:
    """One guide per task with at least one implementation file, columns in the registry's order."""
    out = []
    for task in tasks or TASKS:
        modules: dict[str, list[str]] = {}
        for fw, info in FRAMEWORKS.items():
            modules.setdefault(info.module, []).append(fw)
        columns = []
        for module, frameworks in modules.items():
            path = impl_path(task, frameworks[0])
            if path is None:
                continue
            root = _repo_root(path)
            columns.append(build_column(task, module, frameworks, path, root, links))
        if not columns:
            continue
        seen = [p for c in columns for p in c.phases]
        phases = [p for p in PHASE_ORDER if p in seen] + [p for p in dict.fromkeys(seen) if p not in PHASE_ORDER]
        out.append(Guide(task, TASKS[task].title if task in TASKS else task, columns, phases, site_url))
    return out


def file_marks(rel: str) -> crosswalk.FileMarks | None:
    """The markers of implementations/<rel> (a `concepts-from` target), or None when there is no such file."""
    task, _, name = rel.partition("/")
    module = name.removesuffix(".py")
    fw = next((f for f, info in FRAMEWORKS.items() if info.module == module), None)
    path = impl_path(task, fw) if fw else None
    return _read_marks(path, path.stat().st_mtime_ns, shown_path(task, path, _repo_root(path))) if path else None


@lru_cache(maxsize=None)
def _read_marks(path: Path, mtime_ns: int, shown: str) -> crosswalk.FileMarks:
    """Parsed once per file version: a crosswalk table resolves `concepts-from` files again and again."""
    return crosswalk.read_marks(path, shown)


def _repo_root(path: Path) -> Path | None:
    """The folder above the implementations package, so paths read `implementations/<task>/<file>`."""
    try:
        return path.resolve().parents[2]
    except IndexError:
        return None
