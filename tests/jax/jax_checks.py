"""Checks shared by the jax family's tests (jax, flax, haiku): what every cell of a task must show."""
import pytest

from conftest import assert_all_ok, by_cell

PARAM_COUNTS = {"mnist_mlp": 235_146, "mnist_cnn": 34_826}
# jax2onnx lowers lax.reduce_window (what hk.max_pool calls) to a 4-D MaxPool that onnxruntime rejects
REDUCE_WINDOW_POOL = "Unsupported pooling size"


def check_linreg_synthetic(run_cells, framework, variants=1, minibatch_only=()):
    """Every mode (and variant) learns and round-trips; full-batch reaches least squares and the true
    A, b; every cell equals the hand-written numpy reference (same zeros, batches, float32 SGD) — a
    `minibatch_only` variant (gradient accumulation) the reference's plain mini-batch steps."""
    code, rows = run_cells("linear_regression", f"{framework},numpy", "--dataset", "synthetic", "--no-onnx")
    assert_all_ok(rows, expected_count=3 * (variants + 1) + len(minibatch_only))
    for variant in minibatch_only:
        assert [r["mode"] for r in rows if r["variant"] == variant] == ["minibatch"], variant
    ours = [r for r in rows if r["framework"] == framework]
    reference = {r["mode"]: r["metrics"] for r in rows if r["framework"] == "numpy"}
    for r in ours:
        m = r["metrics"]
        assert m["train_mse"] < m["first_loss"], r["cell"]  # it learns, in every mode
        assert m["save_load"]["status"] == "ok" and m["save_load"]["max_abs_diff"] == 0.0, r["cell"]
        assert m["test_mse"] == pytest.approx(reference[r["mode"]]["test_mse"], rel=1e-5), r["cell"]
    for full in (r["metrics"] for r in ours if r["mode"] == "full-batch"):
        assert full["test_mse"] <= 1.01 * full["closed_form_test_mse"]
        assert full["param_error"] < 1e-2


def check_linreg_real_datasets(run_cells, framework, *flags):
    code, rows = run_cells("linear_regression", framework, "--dataset", "diabetes,california",
                           "--modes", "full-batch", *flags)
    assert_all_ok(rows, expected_count=2)
    for r in rows:
        m = r["metrics"]
        assert m["train_mse"] < m["first_loss"] and m["test_mse"] < 1.1 * m["closed_form_test_mse"], r["cell"]
        assert r["onnx"]["status"] == "ok" and r["onnx"]["dynamic_batch"], r["onnx"]


def check_mnist(rows, task, variants, onnx_error=None):
    """Smoke run of every variant: the spec's parameter count, the loss goes down, save/load predicts
    identically (the arrays are stored bit for bit), and the ONNX file runs at batch 256 and 37."""
    assert_all_ok(rows, expected_count=len(variants))
    cells = by_cell(rows)
    for variant in variants:
        r = cells[f"{task}/{rows[0]['framework']}/{variant}/cpu/mnist"]
        m = r["metrics"]
        assert m["param_count"] == PARAM_COUNTS[task]
        assert m["train_loss_curve"][-1] < m["first_loss"], r["cell"]  # it learns
        assert m["save_load"]["status"] == "ok" and m["save_load"]["max_abs_diff"] == 0.0, m["save_load"]
        if onnx_error is None:
            assert r["onnx"]["status"] == "ok", r["onnx"]
            assert set(r["onnx"]["batches"]) == {"256", "37"}, r["onnx"]
        else:  # a known exporter limit, reported rather than hidden
            assert r["onnx"]["status"] != "ok" and onnx_error in r["onnx"]["error"], r["onnx"]
