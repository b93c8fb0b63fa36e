"""--threads and divergence, measured on a TF2 cell (tests/conftest.py: check_threads_and_divergence)."""
from conftest import check_threads_and_divergence


def test_tf2_threads_and_divergence(run_cells):
    check_threads_and_divergence(run_cells, "tf2", "function")
