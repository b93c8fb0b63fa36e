"""Tanh regression in the torch family's columns (tests/tanh_family.py). Fails, never skips, where one is missing."""
import pytest

from tanh_family import check_tanh_column


@pytest.mark.parametrize("framework", ("pytorch", "lightning", "keras-torch"))
def test_tanh_regression_learns_exports_and_counts_its_parameters(run_cells, framework):
    check_tanh_column(run_cells, framework)
