"""Shared by tests/<family>/test_parity_*.py: one `dlrosetta parity` run of a family's columns, and
the checks each column must pass (first-step loss = the numpy float64 reference within 1e-5)."""
from __future__ import annotations

import json

from harness import cli
from harness.checks.parity import FIRST_STEP_RTOL, PARITY_FILE
from harness.matrix.registry import NOT_APPLICABLE

TASKS = ("mnist_mlp", "mnist_cnn", "linear_regression", "tanh_regression")
STEPS = 5


def pairs(frameworks) -> list[tuple[str, str]]:
    """(framework, task) for every pair that is meant to exist (a missing file fails, not skips)."""
    return [(f, t) for f in frameworks for t in TASKS if (t, f) not in NOT_APPLICABLE]


def run_parity(out, frameworks) -> tuple[int, list[dict]]:
    """`dlrosetta parity` for these frameworks (every variant), STEPS steps; its exit code and rows."""
    code = cli.main(["parity", "--tasks", ",".join(TASKS), "--frameworks", ",".join(frameworks),
                     "--steps", str(STEPS), "--profile", "smoke", "--out", str(out), "--no-progress",
                     "--timeout", "900"])
    path = out / PARITY_FILE
    assert path.exists(), f"dlrosetta parity exited {code} without writing {path}"
    return code, [json.loads(line) for line in path.read_text().splitlines()]


def check_column(rows: list[dict], framework: str, task: str) -> None:
    """Every variant of `framework` ran (a missing framework fails here), started from the shared
    weights (first-step loss and untrained logits equal the float64 reference) and passed."""
    columns = [r for r in rows if r["kind"] == "column" and r["framework"] == framework and r["task"] == task]
    assert columns, f"no {framework} column for {task}"
    for r in columns:
        assert r["status"] == "ok", (r["cell"], r["status"], r["error"])
        m = r["metrics"]
        assert m["steps_recorded"] >= STEPS, r["cell"]
        assert m["first_step_rel_dev"] <= FIRST_STEP_RTOL, (r["cell"], m["first_step_loss"],
                                                            m["reference_first_step_loss"])
        assert m["first_logits_max_abs_diff"] <= 1e-4, (r["cell"], m["first_logits_max_abs_diff"])
        assert r["passed"], (r["cell"], r["failures"])


def family_tests(frameworks):
    """The parity tests of one family, for its test module to bind:
    `parity, test_first_step_equals_the_numpy_reference, test_parity_run_passes = family_tests(...)`."""
    import pytest

    @pytest.fixture(scope="module")
    def parity(tmp_path_factory):
        return run_parity(tmp_path_factory.mktemp("parity"), frameworks)

    @pytest.mark.parametrize("framework, task", pairs(frameworks))
    def test_first_step_equals_the_numpy_reference(parity, framework, task):
        check_column(parity[1], framework, task)

    def test_parity_run_passes(parity):
        code, rows = parity
        failed = [(r["cell"], r["failures"]) for r in rows if r["kind"] == "column" and r["passed"] is False]
        assert code == 0 and not failed, failed

    return parity, test_first_step_equals_the_numpy_reference, test_parity_run_passes
