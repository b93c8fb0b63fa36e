"""The Keras 3 tests, shared by tests/<family>/test_keras_<backend>.py: one implementation file per task,
run through the real runner on the backend named by that module's `framework` fixture (the runner sets
KERAS_BACKEND). Fails, never skips, where the backend is missing: its cells are `unavailable`."""
import json

import numpy as np
import pytest

from conftest import (assert_all_ok, by_cell, check_stops_at_target, check_tensorboard_variant,
                      check_tuned_trains_like)
from harness.matrix.registry import VARIANT_NOT_APPLICABLE

# The one known exporter gap. On JAX, Keras exports through jax2onnx, which lowers MaxPooling2D's
# lax.reduce_window to an ONNX MaxPool over all four axes (batch and channels as window-1 "spatial"
# axes); onnxruntime pools over 1 to 3 spatial axes only. If this reason changes, look again.
ONNX_UNSUPPORTED = {
    ("mnist_cnn", "keras-jax"): "InvalidArgument: [ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Non-zero status code "
                                "returned while running MaxPool node. Name:'node_MaxPool_9' Status Message: "
                                "Unsupported pooling size.",
}


def check_round_trip_and_learning(row):
    m = row["metrics"]
    assert m["train_mse"] < m["first_loss"], row["cell"]  # it learns, in every mode
    # .keras keeps the float32 weights as they are: the same predictions, bit for bit
    assert m["save_load"]["status"] == "ok" and m["save_load"]["max_abs_diff"] == 0.0, m["save_load"]


def test_linreg_synthetic_full_batch(run_cells, framework):
    _, rows = run_cells("linear_regression", framework, "--dataset", "synthetic", "--modes", "full-batch")
    assert_all_ok(rows, expected_count=1)
    row = rows[0]
    check_round_trip_and_learning(row)
    m = row["metrics"]
    assert abs(m["test_mse"] / m["closed_form_test_mse"] - 1) < 0.01  # gradient descent reaches least squares
    assert m["param_error"] < 1e-2
    assert row["onnx"]["status"] == "ok", row["onnx"]


def test_linreg_synthetic_sgd_and_minibatch(run_cells, framework):
    _, rows = run_cells("linear_regression", framework, "--dataset", "synthetic", "--modes", "sgd,minibatch",
                        "--no-onnx")  # the export is the full-batch test's
    assert_all_ok(rows, expected_count=3)  # + "accumulate", in mini-batch mode only
    for row in rows:
        check_round_trip_and_learning(row)
        assert row["metrics"]["test_mse"] < 10 * row["metrics"]["closed_form_test_mse"], row["cell"]
    # one SGD step per row: the steps the harness times are fit's steady steps, one per batch
    cells = by_cell(rows)
    sgd = cells[f"linear_regression/{framework}/sequential/cpu/synthetic/sgd"]
    assert sgd["timing"]["steps"] == 256
    # gradient_accumulation_steps=k over single rows: the plain mini-batch update, to float32 rounding
    plain, acc = (cells[f"linear_regression/{framework}/{v}/cpu/synthetic/minibatch"]["metrics"]
                  for v in ("sequential", "accumulate"))
    np.testing.assert_allclose(acc["loss_curve"], plain["loss_curve"], rtol=1e-5)
    np.testing.assert_allclose(acc["A"] + acc["b"], plain["A"] + plain["b"], rtol=1e-5, atol=1e-6)


def test_linreg_real_datasets(run_cells, framework):
    _, rows = run_cells("linear_regression", framework, "--dataset", "diabetes,california", "--modes", "full-batch",
                        "--no-onnx")
    assert_all_ok(rows, expected_count=2)
    for row in rows:
        check_round_trip_and_learning(row)
        assert row["metrics"]["test_mse"] < 1.1 * row["metrics"]["closed_form_test_mse"], row["cell"]


@pytest.mark.parametrize("task, param_count", [("mnist_mlp", 235_146), ("mnist_cnn", 34_826)])
def test_mnist_smoke_every_variant(run_cells, framework, task, param_count, tmp_path):
    # Sequential, functional API, and tuned (compile's steps_per_execution and jit_compile; the CNN's layers
    # laid out for the backend: channels_first on PyTorch, a reshape-and-max pool on JAX)
    _, rows = run_cells(task, framework, "--variants", "sequential,functional,tuned")
    assert_all_ok(rows, expected_count=3)
    for row in rows:
        m = row["metrics"]
        assert m["param_count"] == param_count, row["cell"]
        assert m["train_loss_curve"][-1] < m["first_loss"], row["cell"]  # it learns
        assert m["save_load"]["status"] == "ok" and m["save_load"]["max_abs_diff"] == 0.0, m["save_load"]
        spec = row["spec"]  # one recorded step per batch, one epoch-end per epoch: the callback's contract
        assert len(m["train_loss_curve"]) == spec["epochs"]
        assert row["timing"]["steps"] == spec["epochs"] * (spec["train_subset"] // spec["batch_size"])
        known = None if row["variant"] == "tuned" else ONNX_UNSUPPORTED.get((task, framework))
        if known:
            assert (row["onnx"]["status"], row["onnx"]["error"]) == ("unsupported", known), row["onnx"]
        else:  # the tuned CNN on JAX pools with ReduceMax, which onnxruntime runs
            assert row["onnx"]["status"] == "ok", row["onnx"]
        assert row["deploy"]["status"] == "ok", row["deploy"]
    # the CNN's layers and pool compute the same values, and so does steps_per_execution
    check_tuned_trains_like(rows, task, "sequential")
    tuned_curve = next(r["metrics"]["train_loss_curve"] for r in rows if r["variant"] == "tuned")
    # steps_per_execution (not on PyTorch): the smoke MLP's 16 steps an epoch run 2 to an execution, each
    # recorded as half its time, with the pair's mean loss, so the steps' mean is still fit's epoch loss
    steps = json.loads(next((tmp_path / "run1" / "cells").glob("*__tuned__*/steps.json")).read_text())
    per_execution = 2 if task == "mnist_mlp" and framework != "keras-torch" else 1
    pairs = np.reshape(steps["step_s"], (-1, per_execution))
    assert (pairs == pairs[:, :1]).all() and (per_execution == 1 or len(set(pairs[:, 0])) > 1), steps["step_s"]
    assert np.mean(steps["losses"]) == pytest.approx(tuned_curve[0], rel=1e-5)


def test_mnist_stops_at_target(run_cells, framework):
    check_stops_at_target(run_cells, framework, "sequential")  # fit: the callback sets stop_training


def test_mnist_tensorboard_variant(run_cells, framework, tmp_path):
    """keras.callbacks.TensorBoard in fit, the test set as validation data. Keras 3.15 writes through
    tensorflow.summary on every backend: where the env has no TensorFlow the cell is not_applicable."""
    reason = VARIANT_NOT_APPLICABLE.get(("mnist_mlp", framework, "tensorboard"))
    if reason is not None:
        _, rows = run_cells("mnist_mlp", framework, "--variants", "tensorboard")
        assert [(r["status"], r["error"]) for r in rows] == [("not_applicable", reason)]
        return
    _, rows = run_cells("mnist_mlp", framework, "--variants", "sequential,tensorboard", "--set", "epochs=2",
                        "--no-onnx")
    check_tensorboard_variant(tmp_path / "run1", rows, "sequential", "train/batch_loss",
                              "validation/epoch_accuracy", running_mean=True)
