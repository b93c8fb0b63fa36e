"""Flax cells (nnx, and linen as a variant) through the real runner. Fails (never skips) where flax is
missing: such cells are `unavailable`, which `assert_all_ok` rejects."""
import pytest

from conftest import check_stops_at_target, check_tuned_trains_like
from jax_checks import check_linreg_real_datasets, check_linreg_synthetic, check_mnist


def test_x2_is_not_applicable(run_cells):
    code, rows = run_cells("x2_descent", "flax")
    assert [r["status"] for r in rows] == ["not_applicable"]


def test_linreg_synthetic_every_mode(run_cells):
    check_linreg_synthetic(run_cells, "flax", variants=2)  # nnx.jit (cached_partial), functional split


def test_linreg_real_datasets(run_cells):
    check_linreg_real_datasets(run_cells, "flax", "--variants", "nnx")


@pytest.mark.parametrize("task, variants", [("mnist_mlp", ["nnx", "linen"]), ("mnist_cnn", ["nnx", "linen", "tuned"])])
def test_mnist_smoke_every_variant(run_cells, task, variants):
    code, rows = run_cells(task, "flax")
    check_mnist(rows, task, variants)  # the tuned CNN's reshape-and-max pool exports as ReduceMax
    if "tuned" in variants:
        check_tuned_trains_like(rows, task, "nnx")


def test_mnist_stops_at_target(run_cells):
    check_stops_at_target(run_cells, "flax", "nnx")  # nnx: the model is updated in place, then evaluated as is
