"""The guide's notebook of implementations/x2_descent/pytorch.py, executed in the torch env's own kernel
(tests/notebook_check.py)."""
from notebook_check import check_x2_notebook


def test_x2_notebook_runs_in_this_env():
    check_x2_notebook("pytorch")
