"""Tanh regression in the tf family's columns (tests/tanh_family.py). Fails, never skips, where one is missing."""
import pytest

from tanh_family import check_tanh_column


@pytest.mark.parametrize("framework", ("tf1", "tf2", "keras-tensorflow"))
def test_tanh_regression_learns_exports_and_counts_its_parameters(run_cells, framework):
    check_tanh_column(run_cells, framework)
