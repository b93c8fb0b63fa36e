"""The layers point one way: implementations -> harness -> reports, and the command line (harness/cli.py)
is the one module that joins harness and reports. Read from the source (ast), so that a lazy import
inside a function counts as much as one at the top of a file."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JOINERS = {"harness.cli", "harness.__main__"}
FRAMEWORKS = ("torch", "tensorflow", "jax", "flax", "keras", "lightning", "optax", "haiku")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for pkg in ("harness", "reports") for p in sorted((ROOT / pkg).rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """The harness/reports modules that `name` imports anywhere in its file."""
    out = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from harness import cli` imports the module harness.cli; `from harness.x import f` imports harness.x
            targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                       for a in node.names]
        else:
            continue
        out |= {t for t in targets if t in MODULES and t != name}
    return out


GRAPH = {name: imports_of(name) for name in MODULES}


def test_only_the_command_line_joins_harness_and_reports():
    crossing = sorted(f"{a} -> {b}" for a, deps in GRAPH.items() for b in deps
                      if a.startswith("harness") and b.startswith("reports") and a not in JOINERS)
    assert not crossing, crossing
    back = sorted(f"{a} -> {b}" for a, deps in GRAPH.items() for b in deps if a.startswith("reports") and b in JOINERS)
    assert not back, back


def test_no_import_circles():
    """Depth-first search for a cycle among every harness and reports module (lazy imports included)."""
    state, cycles = {}, []

    def visit(node, path):
        state[node] = "open"
        for dep in sorted(GRAPH[node]):
            if state.get(dep) == "open":
                cycles.append(" -> ".join(path[path.index(dep):] + [dep]) if dep in path else f"{node} -> {dep}")
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert not cycles, cycles


def test_implementations_use_only_the_harness_s_shared_weights():
    """An implementation file reads like its framework's tutorial: from the harness it takes at most the
    shared initial weights (parity), nothing that would tie it to how cells are run."""
    used = set()
    for path in (ROOT / "implementations").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("harness", "reports")):
                used.add(node.module)
    assert used and all(m.endswith(".init") and m.startswith("harness.") for m in used), used


def test_importing_every_harness_module_imports_no_framework():
    """(reports needs the report extra, which this env does not have; tests/report checks its imports.)"""
    harness = sorted(m for m in MODULES if m.startswith("harness"))
    code = ("import importlib, sys\n"
            f"for m in {harness!r}:\n"
            "    if not m.endswith('__main__'): importlib.import_module(m)\n"
            f"bad = [m for m in {FRAMEWORKS!r} if m in sys.modules]\n"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
