"""Shared fixtures: run cells through the real runner (subprocess per cell), read their rows."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import cli
from harness.runner import read_rows

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    # CI and the tox envs pass DLROSETTA_DATA (../shared/data); say so plainly when it is missing
    if not os.environ.get("DLROSETTA_DATA"):
        local = ROOT.parent / "shared" / "data"
        if local.is_dir():
            os.environ["DLROSETTA_DATA"] = str(local)
    else:  # absolute, so that a test that changes directory still finds it
        os.environ["DLROSETTA_DATA"] = str(Path(os.environ["DLROSETTA_DATA"]).resolve())


@pytest.fixture
def run_cells(tmp_path):
    """run_cells(tasks, frameworks, *extra_flags) -> (exit_code, rows): `dlrosetta run` on the smoke
    profile into a fresh run dir."""
    counter = {"n": 0}

    def run(tasks, frameworks, *extra, profile="smoke"):
        counter["n"] += 1
        out = tmp_path / f"run{counter['n']}"
        argv = ["run", "--tasks", tasks, "--frameworks", frameworks, "--profile", profile, "--out", str(out),
                "--no-progress", "--timeout", "900", *extra]
        code = cli.main(argv)
        return code, read_rows(out / "results.jsonl")

    return run


def by_cell(rows):
    return {r["cell"]: r for r in rows}


def assert_all_ok(rows, expected_count=None):
    assert rows, "no cell ran"
    bad = [(r["cell"], r["status"], r["error"]) for r in rows if r["status"] != "ok"]
    assert not bad, f"cells not ok: {bad}"
    if expected_count is not None:
        assert len(rows) == expected_count, [r["cell"] for r in rows]


def check_stops_at_target(run_cells, framework, variants):
    """`stop_at_target` (the full profile's "trained to target") ends training after the first epoch
    whose test accuracy reaches the target, however the loop is written: a hand-written loop (the
    recorder raises), Keras's fit (stop_training), Lightning's Trainer (should_stop). The model that
    comes out is the one just evaluated, and it still saves and reloads. An unreachable target runs
    every epoch."""
    flags = ("--variants", variants, "--no-onnx", "--set", "epochs=3", "--set", "stop_at_target=true")
    _, reached = run_cells("mnist_mlp", framework, *flags, "--set", "target_accuracy=0.5")
    _, missed = run_cells("mnist_mlp", framework, *flags, "--set", "target_accuracy=0.9999")
    assert_all_ok(reached + missed, expected_count=2)
    for row, epochs in ((reached[0], 1), (missed[0], 3)):
        m, spec = row["metrics"], row["spec"]
        assert (m["epochs_trained"], m["stopped_at_target"]) == (epochs, epochs == 1), row["cell"]
        assert len(m["test_accuracy_curve"]) == len(m["train_loss_curve"]) == epochs, row["cell"]
        assert row["timing"]["steps"] == epochs * (spec["train_subset"] // spec["batch_size"]), row["cell"]
        assert m["save_load"]["status"] == "ok" and m["save_load"]["max_abs_diff"] == 0.0, m["save_load"]
    assert reached[0]["metrics"]["reached_target"] and reached[0]["metrics"]["time_to_target_s"] > 0
    assert not missed[0]["metrics"]["reached_target"]


def check_threads_and_divergence(run_cells, framework, variant):
    """One cell of a family with `--threads 1`: pinned to one core, its CPU time per wall second stays
    near 1 (measured, not assumed from a variable); and `lr=1e6` is recorded as diverged, at the step
    where the loss exploded, with training stopped there."""
    from harness.runner import allowed_cpus

    flags = ("--variants", variant, "--no-onnx")
    _, pinned = run_cells("mnist_mlp", framework, *flags, "--threads", "1")
    assert_all_ok(pinned, expected_count=1)
    threads = pinned[0]["threads"]
    assert threads["affinity"] == allowed_cpus()[:1], threads
    assert threads["cpu_per_wall"] <= 1.05, threads
    assert pinned[0]["stability"]["process"]["cpu_per_wall"] <= 1.05, pinned[0]["stability"]
    _, exploded = run_cells("mnist_mlp", framework, *flags, "--sweep", "lr=1e6")
    assert len(exploded) == 1 and exploded[0]["status"] == "diverged", exploded[0]["error"]
    d = exploded[0]["divergence"]
    steps_per_epoch = exploded[0]["spec"]["train_subset"] // exploded[0]["spec"]["batch_size"]
    assert isinstance(d["step"], int) and d["step"] < steps_per_epoch, d  # stopped before the epoch ended
    assert exploded[0]["timing"]["steps"] == d["step"] - 1
