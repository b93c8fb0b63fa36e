"""The idiom guide: each task's implementation files, split on their `# %% <phase>` cell markers and
syntax-highlighted with Pygments, so that the same phase of every framework lines up side by side.

Everything is generated from the files themselves (found through the registry, never imported).
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from harness.registry import FRAMEWORKS, impl_path
from harness.tasks import TASKS

MARKER = re.compile(r"^#\s*%%\s*([A-Za-z][\w-]*)")
PREAMBLE = "setup"
PHASE_ORDER = (PREAMBLE, "model", "loss", "step", "train", "evaluate", "save", "export")
PHASE_TITLES = {
    PREAMBLE: "imports, variants",
    "model": "model",
    "loss": "loss",
    "step": "update step",
    "train": "training loop",
    "evaluate": "evaluation",
    "save": "save / load",
    "export": "ONNX export",
}
CSS_CLASS = "hl"


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


@dataclass
class Guide:
    task: str
    title: str
    columns: list[Column]
    phases: list[str]

    @property
    def phase_titles(self) -> dict:
        return {p: PHASE_TITLES.get(p, p) for p in self.phases}


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


def build_column(task: str, module: str, frameworks: list[str], path: Path, root: Path | None) -> Column:
    source = path.read_text(encoding="utf-8", errors="replace")
    summary, found_variants = file_info(source)
    try:
        shown = str(path.resolve().relative_to(root)) if root else path.name
    except ValueError:
        shown = f"implementations/{task}/{path.name}"
    col = Column(key=module, title=module_title(module, frameworks), path=shown,
                 lines=len(source.splitlines()), summary=summary, variants=found_variants, frameworks=frameworks)
    lexer = PythonLexer()
    for phase, start, text in split_phases(source):
        html = highlight(text, lexer, _formatter(start, f"src-{task}-{module}".replace("_", "-")))
        if phase in col.phases:  # a phase marked twice: both parts, in order
            col.phases[phase] = Markup(str(col.phases[phase]) + html)
            col.phase_lines[phase] = (col.phase_lines[phase][0], start + text.count("\n"))
        else:
            col.phases[phase] = Markup(html)
            col.phase_lines[phase] = (start, start + text.count("\n"))
    return col


def guides(tasks=None) -> list[Guide]:
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
            columns.append(build_column(task, module, frameworks, path, root))
        if not columns:
            continue
        seen = [p for c in columns for p in c.phases]
        phases = [p for p in PHASE_ORDER if p in seen] + [p for p in dict.fromkeys(seen) if p not in PHASE_ORDER]
        out.append(Guide(task, TASKS[task].title if task in TASKS else task, columns, phases))
    return out


def _repo_root(path: Path) -> Path | None:
    """The folder above the implementations package, so paths read `implementations/<task>/<file>`."""
    try:
        return path.resolve().parents[2]
    except IndexError:
        return None
