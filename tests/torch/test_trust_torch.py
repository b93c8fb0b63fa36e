"""--threads and divergence, measured on a PyTorch cell (tests/conftest.py: check_threads_and_divergence)."""
from conftest import check_threads_and_divergence


def test_pytorch_threads_and_divergence(run_cells):
    check_threads_and_divergence(run_cells, "pytorch", "eager")
