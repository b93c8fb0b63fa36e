"""Lightning cells through the real runner. Fails (never skips) where lightning or torch is missing."""
import math

import numpy as np
import pytest

from conftest import (assert_all_ok, by_cell, check_logging_variant, check_stops_at_target,
                      check_tensorboard_variant)


def assert_saves_and_learns(row, curve="loss_curve"):
    m = row["metrics"]
    assert m[curve][-1] < m["first_loss"], row["cell"]  # it learns
    assert m["save_load"]["status"] == "ok" and m["save_load"]["max_abs_diff"] == 0.0, row["cell"]


def test_linreg_full_batch_every_dataset(run_cells, tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"  # Lightning writes lightning_logs/ and checkpoints/ into cwd unless told not to
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    _, synthetic = run_cells("linear_regression", "lightning", "--modes", "full-batch", "--datasets", "synthetic")
    _, real = run_cells("linear_regression", "lightning", "--modes", "full-batch", "--datasets",
                        "diabetes,california", "--no-onnx")
    assert_all_ok(synthetic + real, expected_count=3)
    assert list(cwd.iterdir()) == []
    for r in synthetic + real:
        assert_saves_and_learns(r)
        assert math.isfinite(r["metrics"]["test_mse"])
    row = synthetic[0]
    m = row["metrics"]
    assert abs(m["test_mse"] / m["closed_form_test_mse"] - 1) < 0.01
    assert m["param_error"] < 1e-2
    assert row["onnx"]["status"] == "ok", row["onnx"]


def test_linreg_batches_follow_the_harness_order(run_cells):
    """SGD and mini-batch over several epochs: Lightning's loss curve is the numpy reference's, which it
    can only be if every epoch sees the harness's batches in the harness's order (set_epoch works)."""
    code, rows = run_cells("linear_regression", "lightning,numpy", "--datasets", "synthetic",
                           "--modes", "sgd,minibatch", "--no-onnx")
    assert code == 0
    assert_all_ok(rows, expected_count=5)  # + "accumulate", in mini-batch mode only
    cells = by_cell(rows)
    for mode, variant in (("sgd", "trainer"), ("minibatch", "trainer"), ("minibatch", "accumulate")):
        ours = cells[f"linear_regression/lightning/{variant}/cpu/synthetic/{mode}"]
        reference = cells[f"linear_regression/numpy/manual/cpu/synthetic/{mode}"]
        assert_saves_and_learns(ours)
        a, b = np.asarray(ours["metrics"]["loss_curve"]), np.asarray(reference["metrics"]["loss_curve"])
        assert a.shape == b.shape and np.max(np.abs(a - b) / b) < 1e-5, (mode, variant)
    # accumulate_grad_batches=k over single rows ends where the mini-batch Trainer does
    plain, acc = (cells[f"linear_regression/lightning/{v}/cpu/synthetic/minibatch"]["metrics"]
                  for v in ("trainer", "accumulate"))
    np.testing.assert_allclose(acc["A"] + acc["b"], plain["A"] + plain["b"], rtol=1e-5, atol=1e-6)


def test_mnist_mlp_and_cnn_smoke(run_cells):
    code, rows = run_cells("mnist_mlp,mnist_cnn", "lightning", "--variants", "trainer")
    assert_all_ok(rows, expected_count=2)
    cells = by_cell(rows)
    for task, count in (("mnist_mlp", 235_146), ("mnist_cnn", 34_826)):
        row = cells[f"{task}/lightning/trainer/cpu/mnist"]
        assert row["metrics"]["param_count"] == count
        assert_saves_and_learns(row, curve="train_loss_curve")
        assert row["onnx"]["status"] == "ok", row["onnx"]


def test_mnist_tuned_trains_like_pytorch_tuned(run_cells):
    # the tuned module (manual optimization, fused Adam, barebones Trainer) around the PyTorch column's tuned
    # network: from the same seed on the same batches it computes what PyTorch's tuned loop computes
    code, rows = run_cells("mnist_mlp,mnist_cnn", "lightning,pytorch", "--variants", "tuned", "--no-onnx")
    assert_all_ok(rows, expected_count=4)
    cells = by_cell(rows)
    for task, count in (("mnist_mlp", 235_146), ("mnist_cnn", 34_826)):
        ours, torch_tuned = (cells[f"{task}/{f}/tuned/cpu/mnist"]["metrics"] for f in ("lightning", "pytorch"))
        assert ours["param_count"] == count
        assert_saves_and_learns(cells[f"{task}/lightning/tuned/cpu/mnist"], curve="train_loss_curve")
        assert ours["train_loss_curve"] == pytest.approx(torch_tuned["train_loss_curve"], rel=1e-5), task
        assert ours["test_accuracy"] == pytest.approx(torch_tuned["test_accuracy"], abs=1e-3), task


def test_mnist_stops_at_target(run_cells):
    check_stops_at_target(run_cells, "lightning", "trainer")  # Trainer.fit: the callback sets trainer.should_stop


def mlflow_scalars(cell_dir):
    """{metric: [(step, value)]} of the one MLflow run in the cell's SQLite store, read with MLflow's client."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{cell_dir / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name("mnist_mlp").experiment_id])
    return {key: sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
            for key in run.data.metrics}


def test_mnist_logging_variants(run_cells, tmp_path):
    # self.log in training_step and validation_step, written by a TensorBoardLogger (<cell>/tensorboard/version_0)
    # and by an MLFlowLogger (<cell>/mlflow.db); read back with EventAccumulator and MlflowClient
    _, rows = run_cells("mnist_mlp", "lightning", "--variants", "trainer,tensorboard,mlflow", "--set", "epochs=2",
                        "--no-onnx")
    assert_all_ok(rows, expected_count=3)
    check_tensorboard_variant(tmp_path / "run1", rows, "trainer", "version_0/loss/train", "version_0/accuracy/test")
    check_logging_variant(tmp_path / "run1", rows, "trainer", "mlflow", mlflow_scalars, "loss/train", "accuracy/test")
