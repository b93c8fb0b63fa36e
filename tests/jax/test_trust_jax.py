"""--threads and divergence, measured on a JAX cell (tests/conftest.py: check_threads_and_divergence)."""
from conftest import check_threads_and_divergence


def test_jax_threads_and_divergence(run_cells):
    check_threads_and_divergence(run_cells, "jax", "jit")
