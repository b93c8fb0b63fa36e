"""The API crosswalk: which lines of each implementation file realise a named concept, read from markers
that live next to the code (so they cannot drift from it). Framework-free: the files are read, never imported.

The markers, all plain comments:

    optimizer.zero_grad()  # concept: zero-grad            the line realises the concept(s) named
    loss.backward()  # why it matters  # concept: gradient   (after any other comment; several: "a, b")
    # concept-absent: zero-grad: JAX computes gradients functionally, nothing accumulates
                                                             the concept(s) ("a, b: ...") have no line here, and why
    from implementations.mnist_mlp.jax import (...)  # concepts-from: mnist_mlp/jax.py
                                                             concepts not marked here are that file's

A concept marked in one column of a task must be marked, inherited or absent-with-a-reason in every other
column of that task (`problems`; tests/core/test_guide.py fails on any). A marker goes on a line of code, one
marker a line; on a statement that spans lines it may sit on any of them (the cell shows the whole statement).
A concept that no column of a task can have (x² has no data to batch) is said once, in NOT_IN_TASK, rather
than in every file; every other concept of CONCEPTS is a row of each task's table (`uncovered`).
"""
from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

# slug -> (title, the question the row answers)
CONCEPTS: dict[str, tuple[str, str]] = {
    "params": ("parameters / state", "where the weights live and how they are collected"),
    "forward": ("forward pass", "how inputs become outputs"),
    "loss": ("loss", "the objective, from outputs and labels"),
    "gradient": ("gradient", "how the gradient is computed"),
    "zero-grad": ("zeroing gradients (or not)", "whether gradients accumulate and who clears them"),
    "optimizer": ("optimizer", "how the optimizer and its state are made"),
    "step": ("optimizer step", "how an update is applied"),
    "mode": ("train vs eval mode", "how training and inference behaviour are switched"),
    "batching": ("batching / data loading", "how a batch reaches the step"),
    "jit": ("compile / jit", "what is traced or compiled, and when"),
    "device": ("device placement", "how tensors and models reach a device"),
    "save-load": ("save / load", "how a trained model is written and read back"),
    "export": ("export (ONNX)", "how the model leaves the framework"),
    "deploy": ("deployment export", "the framework's own serving format, and how it loads back without the model code"),
    "seed": ("seeding", "where randomness comes from"),
    "precision": ("precision (bf16 / mixed)", "how reduced precision is asked for, and what stays in float32"),
}

# task -> {concept: why no column of the task has it}; every other concept is a row of the task's table
DEPLOYED_ON_MNIST = "the deployment exports (torch.export, SavedModel, jax.export) are checked on the MNIST models"
PRECISION_ON_MNIST = "the precision modes (--precision mixed, bf16) are run on the MNIST models"
NOT_IN_TASK: dict[str, dict[str, str]] = {
    "x2_descent": {
        "forward": "f(x) = x² has no inputs: f is the loss itself",
        "mode": "f has no layers that behave differently in training",
        "batching": "x² has no data: each step reads only x",
        "device": "x is one scalar, left on each framework's default device",
        "save-load": "there is no model: the result is the trajectory of x",
        "export": "there is no model to export",
        "deploy": "there is no model to deploy",
        "seed": "nothing is random: x starts at the spec's x0",
        "precision": PRECISION_ON_MNIST,
    },
    "linear_regression": {
        "seed": "A and b start at zero; the data and the batch order are the harness's: no column draws at random",
        "deploy": DEPLOYED_ON_MNIST,
        "precision": PRECISION_ON_MNIST,
    },
    "tanh_regression": {
        "deploy": DEPLOYED_ON_MNIST,
        "precision": PRECISION_ON_MNIST,
    },
}

CONCEPT = re.compile(r"#\s*concept:\s*([a-z][\w-]*(?:\s*,\s*[a-z][\w-]*)*)\s*$")
ABSENT = re.compile(r"^\s*#\s*concept-absent:\s*([a-z][\w-]*(?:\s*,\s*[a-z][\w-]*)*)\s*:\s*(.+?)\s*$")
FROM = re.compile(r"#\s*concepts-from:\s*([\w./-]+\.py)\s*$")
LOOSE = re.compile(r"#\s*concepts?(?:-[a-z]+)?\s*:")  # anything that looks like a marker


@dataclass
class Mark:
    concept: str
    line: int  # 1-based: the line that carries the marker
    code: str  # the statement the line belongs to, markers stripped, on one line (a compound one: its header)
    path: str  # implementations/<task>/<module>.py
    first: int = 0  # the statement's lines, first to last (0: unknown)
    last: int = 0


@dataclass
class FileMarks:
    path: str
    marks: dict[str, list[Mark]] = field(default_factory=dict)
    absent: dict[str, str] = field(default_factory=dict)  # concept -> reason
    inherits: str | None = None  # "<task>/<module>.py" relative to implementations/
    unknown: list[tuple[int, str]] = field(default_factory=list)  # (line, name) of undeclared concepts
    malformed: list[tuple[int, str]] = field(default_factory=list)  # (line, why) of markers that do not count


def strip_marker(line: str) -> str:
    """The line as a reader should see it: a trailing `# concept: ...` removed (the line is kept)."""
    m = CONCEPT.search(line) or FROM.search(line)
    return line[: m.start()].rstrip() if m else line


def statements(source: str) -> dict[int, tuple[int, int]]:
    """{line: (first, last)} of the statement each line belongs to: the innermost simple statement, a
    decorator, or a compound statement's header (`def ...:`, `with ...:`), never a whole block."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    spans: dict[int, tuple[int, int]] = {}

    def claim(first: int, last: int) -> None:
        for line in range(first, last + 1):  # the narrowest span a line is in wins
            if line not in spans or spans[line][1] - spans[line][0] >= last - first:
                spans[line] = (first, last)

    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt):
            continue
        for deco in getattr(node, "decorator_list", ()):
            claim(deco.lineno, deco.end_lineno)
        body = getattr(node, "body", None)
        if isinstance(body, list) and body:  # the header: up to the line before the block
            claim(node.lineno, max(node.lineno, body[0].lineno - 1))
        else:
            claim(node.lineno, node.end_lineno)
    return spans


def comment_columns(source: str) -> dict[int, int]:
    """{line: column where its comment starts}, found by the tokenizer (so `#` inside strings is kept)."""
    out: dict[int, int] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                out[tok.start[0]] = tok.start[1]
    except (tokenize.TokenError, SyntaxError):
        pass
    return out


def _statement(lines: list[str], first: int, last: int, comments: dict[int, int]) -> str:
    parts = [lines[n - 1][: comments.get(n, len(lines[n - 1]))].strip() for n in range(first, last + 1)]
    return re.sub(r"([(\[{]) ", r"\1", " ".join(p for p in parts if p))


def parse(source: str, path: str) -> FileMarks:
    out = FileMarks(path)
    lines = source.splitlines()
    spans, comments = statements(source), comment_columns(source)
    for number, line in enumerate(lines, start=1):
        if m := ABSENT.match(line):
            for name in (n.strip() for n in m.group(1).split(",")):
                if name not in CONCEPTS:
                    out.unknown.append((number, name))
                out.absent[name] = m.group(2)
            continue
        if m := FROM.search(line):
            out.inherits = m.group(1)
        rest = strip_marker(line)
        if LOOSE.search(rest):
            out.malformed.append((number, "a marker not at the end of the line, or a second one on it"))
        if m := CONCEPT.search(line):
            code = line[: m.start()].strip()
            if not code or code.startswith("#"):
                out.malformed.append((number, "a concept marker on a line without code"))
                continue
            first, last = spans.get(number, (number, number))
            for name in (n.strip() for n in m.group(1).split(",")):
                if name not in CONCEPTS:
                    out.unknown.append((number, name))
                out.marks.setdefault(name, []).append(
                    Mark(name, number, _statement(lines, first, last, comments) or code, path, first, last))
    return out


def read_marks(path: Path, shown: str) -> FileMarks:
    return parse(path.read_text(encoding="utf-8", errors="replace"), shown)


@dataclass
class Cell:
    """One (concept, column) of the table: its lines, or the reason there are none."""
    marks: list[Mark] = field(default_factory=list)
    absent: str | None = None
    inherited_from: str | None = None  # the file the lines are in, when it is not the column's own

    @property
    def empty(self) -> bool:
        return not self.marks and self.absent is None


def resolve(concept: str, fm: FileMarks, load, inherit: bool = True) -> Cell:
    """The cell for `concept` in a file: its own marks, else its absence reason, else the inherited file's
    (followed as far as it goes, unless `inherit` is False). `load(rel)` gives the FileMarks of
    implementations/<rel>, or None."""
    seen, current = set(), fm
    while current is not None and current.path not in seen and (inherit or current is fm):
        seen.add(current.path)
        if concept in current.marks:
            return Cell(current.marks[concept], inherited_from=None if current is fm else current.path)
        if concept in current.absent:
            return Cell(absent=current.absent[concept], inherited_from=None if current is fm else current.path)
        current = load(current.inherits) if current.inherits else None
    return Cell()


def table(files: dict[str, FileMarks], load, task: str | None = None) -> dict[str, dict[str, Cell]]:
    """{concept: {column key: Cell}} for every concept marked in at least one column, in CONCEPTS order. A
    concept that NOT_IN_TASK rules out for `task` is not inherited: a file that imports another task's
    pieces (Lightning's linear regression, from its MNIST file) does not bring in what this task lacks."""
    scoped = NOT_IN_TASK.get(task, {})
    cells = {c: {key: resolve(c, fm, load, inherit=c not in scoped) for key, fm in files.items()} for c in CONCEPTS}
    return {c: row for c, row in cells.items() if any(cell.marks for cell in row.values())}


def problems(task: str, files: dict[str, FileMarks], load) -> list[str]:
    """Why this task's crosswalk is incomplete: an unknown concept name, a broken `concepts-from`, or a
    concept marked in some columns and neither marked nor explained in another."""
    out = []
    for key, fm in files.items():
        out += [f"{fm.path}:{line}: unknown concept {name!r}; known: {', '.join(CONCEPTS)}" for line, name in fm.unknown]
        out += [f"{fm.path}:{line}: {why}" for line, why in fm.malformed]
        if fm.inherits and load(fm.inherits) is None:
            out.append(f"{fm.path}: concepts-from names {fm.inherits}, which does not exist")
    for concept, row in table(files, load, task).items():
        marked = [k for k, cell in row.items() if cell.marks]
        for key, cell in row.items():
            if cell.empty:
                out.append(f"{task}: concept {concept!r} is marked in {', '.join(marked)} but {files[key].path} "
                           f"neither marks it (# concept: {concept}) nor says why not "
                           f"(# concept-absent: {concept}: <reason>)")
    return out



def uncovered(task: str, files: dict[str, FileMarks], load) -> list[str]:
    """Why this task's table is not the whole of CONCEPTS: a concept that is neither a row (marked in some
    column) nor in NOT_IN_TASK for the task, or one in NOT_IN_TASK that a column marks after all."""
    rows, scoped = table(files, load, task), NOT_IN_TASK.get(task, {})
    out = [f"{task}: concept {c!r} is marked in no column; mark it where a column realises it, or say in "
           f"NOT_IN_TASK (reports/crosswalk.py) why no column of the task can have it"
           for c in CONCEPTS if c not in rows and c not in scoped]
    out += [f"{task}: concept {c!r} is in NOT_IN_TASK, but "
            f"{', '.join(k for k, cell in rows[c].items() if cell.marks)} marks it" for c in scoped if c in rows]
    out += [f"{task}: NOT_IN_TASK names unknown concept {c!r}" for c in scoped if c not in CONCEPTS]
    return out


def task_marks(task: str) -> dict[str, FileMarks]:
    """{implementation module: its markers} for every registered implementation file of `task`, in the
    registry's order (one file for all Keras backends), read from the files, never imported."""
    from harness.matrix.registry import FRAMEWORKS, impl_path

    out: dict[str, FileMarks] = {}
    for fw, info in FRAMEWORKS.items():
        path = impl_path(task, fw)
        if info.module not in out and path is not None:
            out[info.module] = read_marks(path, _shown(path))
    return out


def load_marks(rel: str) -> FileMarks | None:
    """The markers of implementations/<rel> (a `concepts-from` target), or None when there is no such file."""
    from harness.matrix.registry import FRAMEWORKS, impl_path

    task, _, name = rel.partition("/")
    fw = next((f for f, info in FRAMEWORKS.items() if info.module == name.removesuffix(".py")), None)
    path = impl_path(task, fw) if fw else None
    return read_marks(path, _shown(path)) if path else None


def _shown(path: Path) -> str:
    """implementations/<task>/<file>: the path below the folder that holds the implementations package."""
    return str(Path(*path.resolve().parts[-3:]))
