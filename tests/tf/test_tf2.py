"""TF2 (GradientTape + tf.function) cells through the real runner. Fails (never skips) where
TensorFlow is missing: such cells are `unavailable`, which the checks reject."""
import pytest

from conftest import by_cell, check_tensorboard_variant
from tf_checks import check_linreg_real, check_linreg_synthetic, check_mnist, check_x2


def test_x2_every_variant_matches_closed_form(run_cells):
    code, rows = run_cells("x2_descent", "tf2")
    assert code == 0
    check_x2(rows, variants=3)


def test_linreg_synthetic_every_mode(run_cells):
    _, rows = run_cells("linear_regression", "tf2", "--dataset", "synthetic")
    check_linreg_synthetic(rows, "linear_regression/tf2/function/cpu/synthetic/full-batch")


def test_linreg_real_datasets(run_cells):
    _, rows = run_cells("linear_regression", "tf2", "--dataset", "diabetes,california", "--modes", "full-batch",
                        "--no-onnx")  # the export is the synthetic test's
    check_linreg_real(rows)


@pytest.mark.parametrize("task, param_count, tuned", [("mnist_mlp", 235_146, ["tuned", "tuned_xla"]),
                                                      ("mnist_cnn", 34_826, ["tuned"])])
def test_mnist_smoke_every_variant(run_cells, task, param_count, tuned):
    # in-memory tensors, a tf.data pipeline, and the tuned steps (a concrete function gathering its batch; XLA)
    _, rows = run_cells(task, "tf2", "--variants", ",".join(["function", "tf_data", *tuned]))
    check_mnist(rows, 2 + len(tuned), param_count)
    # the same model, seed and batches however they are fed: the same training, so tf.data keeps the order
    cells = by_cell(rows)
    plain, pipeline, *fast = (cells[f"{task}/tf2/{v}/cpu/mnist"] for v in ("function", "tf_data", *tuned))
    assert pipeline["metrics"]["train_loss_curve"] == pytest.approx(plain["metrics"]["train_loss_curve"], rel=1e-6)
    for row in fast:  # one rec.step per step; the same ops (tuned) or XLA's fusions of them (tuned_xla)
        assert row["timing"]["steps"] == plain["timing"]["steps"], row["cell"]
        assert row["metrics"]["first_loss"] == pytest.approx(plain["metrics"]["first_loss"], rel=1e-6), row["cell"]
        assert row["metrics"]["train_loss_curve"] == pytest.approx(plain["metrics"]["train_loss_curve"],
                                                                   rel=1e-6 if row["variant"] == "tuned" else 1e-4)
        assert row["deploy"]["status"] == "ok", row["deploy"]


def test_mnist_tensorboard_variant(run_cells, tmp_path):
    # tf.summary.create_file_writer + tf.summary.scalar beside the tf.function step, read back with EventAccumulator
    _, rows = run_cells("mnist_mlp", "tf2", "--variants", "function,tensorboard", "--set", "epochs=2", "--no-onnx")
    check_tensorboard_variant(tmp_path / "run1", rows, "function", "./loss/train", "./accuracy/test")
