"""A family's notebook test: one implementation file as the guide's notebook (reports/guide.py: its `# %%`
cells through jupytext, plus the smoke-run cell), executed by nbclient on an ipykernel that runs this env's
own interpreter (`python3`, which jupyter_client starts with sys.executable), from the repository root."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from reports import guide, idioms

ROOT = Path(__file__).resolve().parent.parent


def execute(task: str, framework: str, timeout: int = 300) -> nbformat.NotebookNode:
    """The notebook of `framework`'s file for `task`, executed, with one more cell printing the kernel's
    interpreter."""
    (g,) = idioms.guides([task])
    col = next(c for c in g.columns if framework in c.frameworks)
    nb = guide.notebook(task, col)
    nbformat.validate(nb)
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.executable)"))
    NotebookClient(nb, kernel_name="python3", timeout=timeout, resources={"metadata": {"path": str(ROOT)}}).execute()
    return nb


def stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stdout")


def check_x2_notebook(framework: str) -> None:
    """x² descent as a notebook ends where the closed form says (x_20 = 10·0.8^20), in this env's kernel."""
    nb = execute("x2_descent", framework)
    driver, where = nb.cells[-2], nb.cells[-1]
    assert Path(stdout(where).strip()).resolve() == Path(sys.executable).resolve(), stdout(where)
    m = re.search(r"x after 20 steps: (\S+) \(exact: (\S+)\)", stdout(driver))
    assert m, stdout(driver)
    got, exact = float(m[1]), float(m[2])
    assert abs(exact - 10 * 0.8**20) <= 1e-5 * exact  # printed to 6 digits
    assert abs(got - exact) <= 1e-4 * exact, (got, exact)
