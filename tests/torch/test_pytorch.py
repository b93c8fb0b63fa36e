"""PyTorch cells through the real runner. Fails (never skips) where torch is missing."""
import math

import numpy as np
import pytest

from conftest import assert_all_ok, check_stops_at_target, check_tensorboard_variant

LINREG_VARIANTS = ("new_leaf", "data", "clone_detach", "optim")  # every mode; "accumulate": mini-batch only


def test_x2_every_variant_matches_closed_form(run_cells):
    code, rows = run_cells("x2_descent", "pytorch")
    assert code == 0
    assert_all_ok(rows, expected_count=3)
    exact = 10 * 0.8**20
    for r in rows:
        assert abs(r["metrics"]["x_final"] - exact) / exact < 1e-5, r["cell"]
        assert len(r["metrics"]["trajectory"]) == 21


def assert_linreg_cell(row):
    m = row["metrics"]
    assert math.isfinite(m["test_mse"]) and math.isfinite(m["train_mse"]), row["cell"]
    assert m["loss_curve"][-1] < m["first_loss"], row["cell"]  # it learns
    assert m["save_load"]["status"] == "ok" and m["save_load"]["max_abs_diff"] == 0.0, row["cell"]


def test_linreg_synthetic_full_batch_every_variant(run_cells):
    # two export paths: the leaves A, b put into an nn.Linear (every manual variant), and nn.Linear
    exported = ("new_leaf", "optim")
    _, with_onnx = run_cells("linear_regression", "pytorch", "--datasets", "synthetic", "--modes", "full-batch",
                             "--variants", ",".join(exported))
    _, without = run_cells("linear_regression", "pytorch", "--datasets", "synthetic", "--modes", "full-batch",
                           "--variants", ",".join(v for v in LINREG_VARIANTS if v not in exported), "--no-onnx")
    rows = with_onnx + without
    assert_all_ok(rows, expected_count=len(LINREG_VARIANTS))
    for r in rows:
        assert_linreg_cell(r)
        m = r["metrics"]
        assert abs(m["test_mse"] / m["closed_form_test_mse"] - 1) < 0.01, r["cell"]
        assert m["param_error"] < 1e-2, r["cell"]
    for r in with_onnx:
        assert r["onnx"]["status"] == "ok", (r["cell"], r["onnx"])
    # four spellings of the same arithmetic: the same loss curve, to float32 rounding
    curves = {r["variant"]: np.asarray(r["metrics"]["loss_curve"]) for r in rows}
    assert set(curves) == set(LINREG_VARIANTS)
    reference = curves["new_leaf"]
    for variant, curve in curves.items():
        assert curve.shape == reference.shape
        assert np.max(np.abs(curve - reference) / reference) < 1e-6, variant


def test_linreg_synthetic_sgd_and_minibatch_every_variant(run_cells):
    code, rows = run_cells("linear_regression", "pytorch", "--datasets", "synthetic", "--modes", "sgd,minibatch",
                           "--no-onnx")
    assert code == 0
    assert_all_ok(rows, expected_count=2 * len(LINREG_VARIANTS) + 1)
    for r in rows:
        assert_linreg_cell(r)  # a few smoke epochs: learning, not yet at the closed form
    # gradient accumulation: k single-sample backward passes, one step, equal the plain mini-batch step
    minibatch = {r["variant"]: r["metrics"] for r in rows if r["mode"] == "minibatch"}
    assert [r["mode"] for r in rows if r["variant"] == "accumulate"] == ["minibatch"]
    acc, plain = minibatch["accumulate"], minibatch["optim"]
    np.testing.assert_allclose(acc["loss_curve"], plain["loss_curve"], rtol=1e-5)
    np.testing.assert_allclose(acc["A"] + acc["b"], plain["A"] + plain["b"], rtol=1e-5, atol=1e-6)


def test_linreg_real_datasets_full_batch(run_cells):
    code, rows = run_cells("linear_regression", "pytorch", "--datasets", "diabetes,california",
                           "--modes", "full-batch", "--variants", "new_leaf", "--no-onnx")
    assert code == 0
    assert_all_ok(rows, expected_count=2)
    for r in rows:
        assert_linreg_cell(r)


@pytest.mark.parametrize("variant", ["eager", "dataloader", "compile", "tuned"])
@pytest.mark.parametrize("task, param_count", [("mnist_mlp", 235_146), ("mnist_cnn", 34_826)])
def test_mnist_smoke_every_variant(run_cells, task, param_count, variant):
    # export_onnx gets the same nn.Module whatever the variant (train returns the uncompiled model):
    # exported and checked once, on the primary variant, to keep the suite short
    onnx = variant == "eager"
    _, rows = run_cells(task, "pytorch", "--variants", variant, *([] if onnx else ["--no-onnx"]))
    assert_all_ok(rows, expected_count=1)
    m = rows[0]["metrics"]
    assert m["param_count"] == param_count
    assert m["train_loss_curve"][-1] < m["first_loss"]  # it learns
    assert m["save_load"]["status"] == "ok" and m["save_load"]["max_abs_diff"] == 0.0
    if onnx:
        assert rows[0]["onnx"]["status"] == "ok", rows[0]["onnx"]


@pytest.mark.parametrize("variant", ["eager", "tuned"])  # tuned: the CNN pools before its ReLU, the same function
@pytest.mark.parametrize("task", ["mnist_mlp", "mnist_cnn"])
def test_shared_init_is_the_spec_network(task, variant):
    """Layout conversion ([in, out] -> [out, in], HWIO -> OIHW, NHWC -> NCHW flatten rows): from the
    spec's weights the torch model computes what the float64 numpy reference computes."""
    from harness.checks import parity
    from harness.matrix.tasks import make_spec
    from implementations.mnist_cnn import pytorch as cnn
    from implementations.mnist_mlp import pytorch as mlp

    spec = make_spec(task, "smoke", init="shared", variant=variant)
    x = np.random.default_rng(0).standard_normal((3, *spec.input_shape)).astype(np.float32)
    x = x.reshape(3, -1) if spec.model == "mlp" else x
    module = cnn if spec.model == "cnn" else mlp
    expected = parity.forward(spec, parity.reference_params(spec), x.astype(np.float64))
    assert np.max(np.abs(module.predict(module.build_model(spec), x) - expected)) < 1e-5


def test_mnist_stops_at_target(run_cells):
    check_stops_at_target(run_cells, "pytorch", "eager")  # a hand-written loop: the recorder raises TargetReached


def test_mnist_tensorboard_variant(run_cells, tmp_path):
    # torch.utils.tensorboard.SummaryWriter: add_scalar per step and per epoch, read back with EventAccumulator
    _, rows = run_cells("mnist_mlp", "pytorch", "--variants", "eager,tensorboard", "--set", "epochs=2", "--no-onnx")
    check_tensorboard_variant(tmp_path / "run1", rows, "eager", "./loss/train", "./accuracy/test")
