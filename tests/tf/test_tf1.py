"""TF1 (tf.compat.v1 graph + Session) cells through the real runner. Fails (never skips) where
TensorFlow is missing: such cells are `unavailable`, which the checks reject."""
import pytest

from conftest import check_stops_at_target
from tf_checks import check_linreg_real, check_linreg_synthetic, check_mnist, check_x2


def test_x2_every_variant_matches_closed_form(run_cells):
    code, rows = run_cells("x2_descent", "tf1")
    assert code == 0
    check_x2(rows, variants=2)


def test_linreg_synthetic_every_mode(run_cells):
    _, rows = run_cells("linear_regression", "tf1", "--dataset", "synthetic")
    check_linreg_synthetic(rows, "linear_regression/tf1/feed_dict/cpu/synthetic/full-batch")


def test_linreg_real_datasets(run_cells):
    _, rows = run_cells("linear_regression", "tf1", "--dataset", "diabetes,california", "--modes", "full-batch",
                        "--no-onnx")  # the export is the synthetic test's
    check_linreg_real(rows)


@pytest.mark.parametrize("task, param_count", [("mnist_mlp", 235_146), ("mnist_cnn", 34_826)])
def test_mnist_smoke_every_variant(run_cells, task, param_count):
    _, rows = run_cells(task, "tf1")  # raw ops, and tf-keras's legacy tf.compat.v1.layers
    check_mnist(rows, 2, param_count)  # Saver: into a fresh graph via import_meta_graph + restore


def test_mnist_stops_at_target(run_cells):
    check_stops_at_target(run_cells, "tf1", "raw")  # a Session loop: the Session outlives the raised TargetReached
