"""Haiku cells through the real runner. Fails (never skips) where dm-haiku is missing: such cells are
`unavailable`, which `assert_all_ok` rejects."""
from conftest import check_tuned_trains_like
from jax_checks import REDUCE_WINDOW_POOL, check_linreg_real_datasets, check_linreg_synthetic, check_mnist


def test_x2_is_not_applicable(run_cells):
    code, rows = run_cells("x2_descent", "haiku")
    assert [r["status"] for r in rows] == ["not_applicable"]


def test_linreg_synthetic_every_mode(run_cells):
    check_linreg_synthetic(run_cells, "haiku")


def test_linreg_real_datasets(run_cells):
    check_linreg_real_datasets(run_cells, "haiku")


def test_mnist_mlp_smoke(run_cells):
    code, rows = run_cells("mnist_mlp", "haiku")
    check_mnist(rows, "mnist_mlp", ["transform"])


def test_mnist_cnn_smoke_both_variants(run_cells):
    code, rows = run_cells("mnist_cnn", "haiku")
    assert sorted(r["variant"] for r in rows) == ["transform", "tuned"]
    # hk.max_pool is lax.reduce_window: jax2onnx exports it, onnxruntime refuses to run it
    check_mnist([r for r in rows if r["variant"] == "transform"], "mnist_cnn", ["transform"],
                onnx_error=REDUCE_WINDOW_POOL)
    check_mnist([r for r in rows if r["variant"] == "tuned"], "mnist_cnn", ["tuned"])  # its pool: ReduceMax
    check_tuned_trains_like(rows, "mnist_cnn", "transform")
