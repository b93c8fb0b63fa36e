"""`dlrosetta run --track mlflow,tensorboard`: a small real matrix logged by the parent, read back with
MLflow's and TensorBoard's own readers; --resume adds to the same parent run without duplicates; bad
--track input is one line (exit 2); a sink failing mid-run costs no row."""
import json
import sys

import pytest
from mlflow import MlflowClient
from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata

from harness import cli
from harness.running.runner import read_rows
from harness.tracking import record

LINREG = "linear_regression/numpy/manual/cpu/synthetic/minibatch"


@pytest.fixture(autouse=True)
def _own_store(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DLROSETTA_TRACK", raising=False)


def run(out, *flags):
    return cli.main(["run", "--tasks", "x2_descent,linear_regression", "--frameworks", "numpy", "--dataset",
                     "synthetic", "--modes", "minibatch", "--profile", "smoke", "--no-onnx", "--no-progress",
                     "--out", str(out), *flags])


def test_mlflow_and_tensorboard_hold_every_process_and_resume_adds_without_duplicates(tmp_path):
    out = tmp_path / "run"
    assert run(out, "--track", "mlflow,tensorboard") == 0
    # resumed with a second repeat of x²: the earlier rows are offered again and skipped, the new process
    # joins the same parent run
    assert cli.main(["run", "--tasks", "x2_descent", "--frameworks", "numpy", "--profile", "smoke", "--no-progress",
                     "--out", str(out), "--repeat", "2", "--resume", "--track", "mlflow,tensorboard"]) == 0
    rows = read_rows(out / "results.jsonl")
    assert [(r["task"], r["repeat"]) for r in rows] == [("x2_descent", 0), ("linear_regression", 0),
                                                        ("x2_descent", 1)]
    assert {r["status"] for r in rows} == {"ok"}
    env = json.loads((out / "environment.json").read_text())

    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("dlrosetta")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("dlrosetta.kind") == "matrix"]
    assert len(parents) == 1 and len(runs) == 4, [r.info.run_name for r in runs]
    parent = parents[0]
    assert parent.data.tags["dlrosetta.run_id"] == env["run_id"] and parent.data.tags["profile"] == "smoke"
    assert parent.data.tags.get("git_commit") == env.get("git_commit") and parent.data.tags["cpu"] == env["cpu"]
    children = {r.data.tags["dlrosetta.key"]: r for r in runs if r is not parent}
    assert sorted(children) == sorted(record.key(r) for r in rows)  # one child per process, none twice
    for row in rows:
        child = children[record.key(row)]
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status == "FINISHED" and child.data.tags["status"] == "ok"
        assert child.data.tags["version.numpy"] == row["versions"]["numpy"]
        assert child.data.tags["stability"] == row["stability"]["flag"]
        assert child.data.params["task"] == row["task"] and child.data.params["repeat"] == str(row["repeat"])
        assert child.data.params["lr"] == str(row["spec"]["lr"]) and child.data.params["threads"] == str(
            row["threads"]["threads"])
        assert child.data.metrics["time/step_s"] == pytest.approx(row["timing"]["step_s"]["median"])
        assert child.data.metrics["memory/peak_rss_mb"] == pytest.approx(row["memory"]["peak_rss_mb"])
        steps = json.loads((out / row["dir"] / "steps.json").read_text())
        history = client.get_metric_history(child.info.run_id, "step/loss")
        assert [m.step for m in history] == list(range(1, len(steps["losses"]) + 1))
        assert [m.value for m in history] == pytest.approx(steps["losses"], rel=1e-6)
        assert [a.path for a in client.list_artifacts(child.info.run_id)] == ["log.txt"]
    linreg = next(r for r in rows if r["cell"] == LINREG and r["repeat"] == 0)
    child = children[record.key(linreg)]
    assert child.data.params["mode"] == "minibatch" and child.data.params["batch_size"] == "32"
    epochs = client.get_metric_history(child.info.run_id, "epoch/train_loss")
    assert [m.step for m in epochs] == list(range(1, linreg["spec"]["epochs"] + 1))
    assert [m.value for m in epochs] == pytest.approx(linreg["metrics"]["loss_curve"], rel=1e-6)
    assert child.data.metrics["final/test_mse"] == pytest.approx(linreg["metrics"]["test_mse"])

    # TensorBoard: one run per process, curves over steps and epochs, the spec as hparams
    for row in rows:
        logdir = out / "tensorboard" / record.name(row)
        assert logdir.name == (f"repeat-{row['repeat']}" if row["repeat"] else row["dir"].split("/")[1])
        events = EventAccumulator(str(logdir))
        events.Reload()
        steps = json.loads((out / row["dir"] / "steps.json").read_text())
        assert [e.step for e in events.Tensors("step/loss")] == list(range(1, len(steps["losses"]) + 1))
        assert len(events.Tensors("step/time_s")) == len(steps["step_s"])
        assert "time/step_s" in events.Tags()["tensors"] and "memory/peak_rss_mb" in events.Tags()["tensors"]
        content = events.PluginTagToContent(hparams_metadata.PLUGIN_NAME)[hparams_metadata.SESSION_START_INFO_TAG]
        session = hparams_metadata.parse_session_start_info_plugin_data(content)
        assert session.hparams["task"].string_value == row["task"]
        assert session.hparams["lr"].number_value == pytest.approx(row["spec"]["lr"])
        if row["task"] == "linear_regression":
            assert session.hparams["mode"].string_value == "minibatch"
            assert len(events.Tensors("epoch/train_loss")) == row["spec"]["epochs"]


def test_an_unknown_sink_is_one_line_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "run"
    assert run(out, "--track", "mlflow,wandb") == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "dlrosetta: error: unknown tracking sink 'wandb'; choose from mlflow, tensorboard"]
    assert not out.exists()


@pytest.mark.parametrize("package", ["mlflow", "tensorboard"])
def test_a_missing_package_names_the_extra(tmp_path, capsys, monkeypatch, package):
    monkeypatch.setitem(sys.modules, package, None)  # `import mlflow` now fails as if it were not installed
    out = tmp_path / "run"
    assert run(out, "--track", package) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"dlrosetta: error: --track {package} needs the 'track' extra: pip install 'dlrosetta[track]'"]
    assert not out.exists()


def test_a_sink_failing_mid_run_costs_no_row(tmp_path, capsys, monkeypatch):
    from harness.tracking import tensorboard_sink

    def broken(self, row):
        raise OSError("disk full")

    monkeypatch.setattr(tensorboard_sink.Sink, "log", broken)
    monkeypatch.setenv("DLROSETTA_TRACK", "tensorboard")  # --track's default
    out = tmp_path / "run"
    assert cli.main(["run", "--tasks", "x2_descent", "--frameworks", "numpy", "--profile", "smoke",
                     "--no-progress", "--out", str(out)]) == 0
    assert [r["status"] for r in read_rows(out / "results.jsonl")] == ["ok"]
    err = capsys.readouterr().err
    assert "tracking with tensorboard stopped (OSError: disk full)" in err and "--resume --track tensorboard" in err
