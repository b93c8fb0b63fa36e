"""JAX (+ optax) cells through the real runner. Fails (never skips) where jax is missing: such cells
are `unavailable`, which `assert_all_ok` rejects."""
import pytest

from conftest import assert_all_ok, check_stops_at_target
from jax_checks import check_linreg_real_datasets, check_linreg_synthetic, check_mnist


def test_x2_every_variant_matches_closed_form(run_cells):
    code, rows = run_cells("x2_descent", "jax")  # jax.grad eagerly, a @jax.jit step, optax.sgd
    assert code == 0
    assert_all_ok(rows, expected_count=3)
    for r in rows:
        trajectory = r["metrics"]["trajectory"]
        assert len(trajectory) == 21
        for k, x in enumerate(trajectory):
            assert abs(x - 10 * 0.8**k) / (10 * 0.8**k) < 1e-5, (r["cell"], k, x)
    # three ways to write the same float32 update: the same numbers
    assert len({tuple(r["metrics"]["trajectory"]) for r in rows}) == 1


def test_linreg_synthetic_every_mode(run_cells):
    check_linreg_synthetic(run_cells, "jax", minibatch_only=["accumulate"])  # + optax.MultiSteps


def test_linreg_real_datasets(run_cells):
    check_linreg_real_datasets(run_cells, "jax")


@pytest.mark.parametrize("task", ["mnist_mlp", "mnist_cnn"])
def test_mnist_smoke(run_cells, task):
    code, rows = run_cells(task, "jax")
    check_mnist(rows, task, ["jit"])


def test_mnist_stops_at_target(run_cells):
    check_stops_at_target(run_cells, "jax", "jit")  # a loop over an immutable params pytree: the evaluated snapshot is the model
