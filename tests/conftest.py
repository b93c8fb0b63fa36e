"""Shared fixtures: run cells through the real runner (subprocess per cell), read their rows."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from harness import cli
from harness.running.runner import read_rows

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


def check_tuned_trains_like(rows, task, primary):
    """A tuned variant is the primary's model made fast: from the same seed, on the same batches, its loss
    curve and accuracy are the primary's, up to the float32 rounding of a different, equivalent graph."""
    cells = {r["variant"]: r["metrics"] for r in rows if r["task"] == task}
    assert cells["tuned"]["train_loss_curve"] == pytest.approx(cells[primary]["train_loss_curve"], rel=1e-4)
    assert cells["tuned"]["test_accuracy"] == pytest.approx(cells[primary]["test_accuracy"], abs=0.01)


def check_threads_and_divergence(run_cells, framework, variant):
    """One cell of a family with `--threads 1`: pinned to one core, its CPU time per wall second stays
    near 1 (measured, not assumed from a variable); and `lr=1e6` is recorded as diverged, at the step
    where the loss exploded, with training stopped there."""
    from harness.running.runner import allowed_cpus

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


def tensorboard_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """{"<run>/<tag>": [(step, value), ...]} for every scalar in the event files under `log_dir`, read
    back with TensorBoard's own EventAccumulator (<run>: the sub-folder holding the events, "." for
    `log_dir` itself). It imports tensorboard: in an env without it, the test fails."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    runs = sorted({path.parent for path in Path(log_dir).rglob("events.out.tfevents.*")})
    assert runs, f"no TensorBoard event files under {log_dir}"
    out = {}
    for run in runs:
        events = EventAccumulator(str(run), size_guidance={"scalars": 0, "tensors": 0})  # 0: keep them all
        events.Reload()
        name = run.relative_to(log_dir).as_posix()
        for tag in events.Tags()["scalars"]:  # torch's SummaryWriter: simple_value summaries
            out[f"{name}/{tag}"] = [(e.step, e.value) for e in events.Scalars(tag)]
        for tag in events.Tags()["tensors"]:  # tf.summary.scalar (TF2, Keras): a rank-0 tensor per point
            values = [(e.step, make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)]
            if all(v.shape == () and v.dtype.kind == "f" for _, v in values):
                out[f"{name}/{tag}"] = [(step, float(v)) for step, v in values]
    return out


def check_tensorboard_variant(run_dir: Path, rows, primary, loss_tag, accuracy_tag, running_mean=False):
    """`check_logging_variant` for a file's `tensorboard` variant, writing into <cell>/tensorboard."""
    check_logging_variant(run_dir, rows, primary, "tensorboard", lambda cell_dir: tensorboard_scalars(
        cell_dir / "tensorboard"), loss_tag, accuracy_tag, running_mean)


def check_logging_variant(run_dir: Path, rows, primary, variant, read_scalars, loss_tag, accuracy_tag,
                          running_mean=False):
    """A logging variant and its file's primary, run together for two epochs: the variant trains the same
    model on the same batches (the same losses and accuracies: it only adds logging), and what it wrote in
    its cell's own folder (`read_scalars(cell_dir)` -> {tag: [(step, value)]}) holds one loss per step and
    one test accuracy per epoch, the values the harness recorded (Keras logs each batch's running mean over
    the epoch, as its callbacks see it)."""
    assert_all_ok(rows)
    cells = {r["variant"]: r for r in rows}
    plain, logged = cells[primary]["metrics"], cells[variant]["metrics"]
    assert logged["train_loss_curve"] == pytest.approx(plain["train_loss_curve"], rel=1e-6)
    assert logged["test_accuracy_curve"] == pytest.approx(plain["test_accuracy_curve"], abs=1e-9)
    cell_dir = run_dir / cells[variant]["dir"]
    scalars = read_scalars(cell_dir)
    assert {loss_tag, accuracy_tag} <= set(scalars), sorted(scalars)
    steps = json.loads((cell_dir / "steps.json").read_text())  # every step's loss, as the harness recorded it
    spec = cells[variant]["spec"]
    assert len(steps["losses"]) == spec["epochs"] * (spec["train_subset"] // spec["batch_size"]) > 0
    losses = [value for _, value in scalars[loss_tag]]
    assert len({step for step, _ in scalars[loss_tag]}) == len(losses) == len(steps["losses"])
    expected = np.asarray(steps["losses"], np.float64)
    if running_mean:
        epoch = np.asarray(steps["epoch"])
        expected = np.concatenate([np.cumsum(expected[epoch == e]) / np.arange(1, np.sum(epoch == e) + 1)
                                   for e in np.unique(epoch)])
    assert losses == pytest.approx(expected.tolist(), rel=1e-5)
    assert [value for _, value in scalars[accuracy_tag]] == pytest.approx(logged["test_accuracy_curve"], abs=1e-6)
