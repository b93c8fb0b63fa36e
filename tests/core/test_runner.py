"""The cell runner with deliberately bad cells: crash, hang, NaN, SIGKILL, exit, and --resume.

The dummy cells live in a throwaway implementations package (DLROSETTA_IMPL_PACKAGE) whose
x2_descent/numpy.py misbehaves according to its variant; the real runner runs them as subprocesses.
"""
import json
import os
import sys

import pytest

from harness import cli
from harness.matrix import registry
from harness.running.runner import read_rows

def run(out, *flags):
    return cli.main(["run", "--tasks", "x2_descent", "--frameworks", "numpy", "--profile", "smoke",
                     "--out", str(out), "--no-progress", *flags])


def test_bad_cells_become_rows_and_the_run_goes_on(dummy_impls, capsys):
    out = dummy_impls / "run"
    code = run(out, "--timeout", "5", "--variants", "ok,crash,hang,nan,sigkill,exit")
    rows = {r["variant"]: r for r in read_rows(out / "results.jsonl")}
    assert code == 1  # some cell failed
    assert list(rows) == ["ok", "crash", "hang", "nan", "sigkill", "exit"]  # every cell ran, in order
    assert rows["ok"]["status"] == "ok"
    assert rows["crash"]["status"] == "failed"
    assert rows["crash"]["error"] == "ValueError: boom"  # one line
    assert rows["hang"]["status"] == "timeout" and "5 s" in rows["hang"]["error"]
    assert rows["nan"]["status"] == "diverged" and rows["nan"]["error"].startswith("diverged: loss is nan")
    assert rows["nan"]["divergence"]["step"] == 2 and rows["nan"]["divergence"]["first_loss"] == 1.0
    assert rows["sigkill"]["status"] == "failed" and "SIGKILL" in rows["sigkill"]["error"]
    assert rows["exit"]["status"] == "failed" and rows["exit"]["error"].startswith("exit code 3")
    for r in rows.values():  # peak RSS of that child alone, from wait4
        assert r["memory"]["peak_rss_mb"] > 5
    err = capsys.readouterr().err
    assert "5 failed" in err.replace("1 timeout", "") or "failed" in err
    assert (out / "cells" / rows["crash"]["cell"].replace("/", "__") / "log.txt").read_text().count("Traceback")


def test_resume_reruns_only_missing_cells(dummy_impls):
    out = dummy_impls / "run"
    assert run(out, "--variants", "ok,crash") == 1
    first = read_rows(out / "results.jsonl")
    assert [r["variant"] for r in first] == ["ok", "crash"]
    # a new run into the same dir without --resume is refused (nothing is overwritten)
    assert run(out, "--variants", "ok,crash,exit") == 2
    assert run(out, "--variants", "ok,crash,exit", "--resume") == 1
    rows = read_rows(out / "results.jsonl")
    assert [r["variant"] for r in rows] == ["ok", "crash", "exit"]  # only the missing cell ran
    assert rows[0]["run_id"] == rows[2]["run_id"]


def test_torn_last_line_is_ignored(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps({"cell": "a", "status": "ok"}) + "\n" + '{"cell": "b", "sta')
    assert [r["cell"] for r in read_rows(path)] == ["a"]


def test_child_environment_is_clean_and_pinned(dummy_impls, monkeypatch):
    from harness.running.runner import RunOptions, cell_env

    monkeypatch.setenv("SOME_SECRET", "x")
    cell = registry.Cell("mnist_mlp", "keras-jax", "sequential")
    env = cell_env(cell, RunOptions(out=dummy_impls / "r", threads=2))
    assert "SOME_SECRET" not in env
    assert env["OMP_NUM_THREADS"] == env["TF_NUM_INTRAOP_THREADS"] == "2"
    assert env["KERAS_BACKEND"] == "jax" and env["JAX_PLATFORMS"] == "cpu"
    assert env["TMPDIR"].startswith(str((dummy_impls / "r").resolve()))
    assert env["KERAS_HOME"].startswith(str((dummy_impls / "r").resolve()))


def test_real_numpy_cells(tmp_path):
    """The numpy reference column, end to end: x² exact, linear regression at least squares."""
    out = tmp_path / "run"
    code = cli.main(["run", "--tasks", "x2_descent,linear_regression", "--frameworks", "numpy",
                     "--profile", "smoke", "--out", str(out), "--no-progress", "--dataset", "synthetic"])
    rows = read_rows(out / "results.jsonl")
    assert code == 0 and len(rows) == 4 and all(r["status"] == "ok" for r in rows)
    x2 = rows[0]["metrics"]
    assert abs(x2["x_final"] - 10 * 0.8**20) / (10 * 0.8**20) < 1e-5
    full = next(r for r in rows if r["mode"] == "full-batch")["metrics"]
    assert full["test_mse"] == pytest.approx(full["closed_form_test_mse"], rel=0.01)
    assert full["param_error"] < 1e-2
    env = json.loads((out / "environment.json").read_text())
    assert env["cores"] and env["threads"] and env["versions"]["numpy"]
    assert env["roofline"]["sgemm_gflops"] > 1


def test_the_wait_for_a_cell_ends_when_it_exits_not_at_the_next_poll():
    import select
    import subprocess

    from harness.running import runner

    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    exited = runner._exit_signal(proc.pid)
    assert exited is not None  # Linux: the reference machine and CI
    try:
        assert select.select([exited], [], [], 0)[0] == []  # still running
        proc.stdin.close()  # lets it finish
        assert select.select([exited], [], [], 30)[0] == [exited]
        assert proc.wait(5) == 0
    finally:
        os.close(exited)
