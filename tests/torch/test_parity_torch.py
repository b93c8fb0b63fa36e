"""`dlrosetta parity` for the torch family: every column starts from the shared weights and its
first-step loss equals the numpy float64 reference within 1e-5 relative (MLP, CNN, linear regression).
Fails, never skips, where a framework is missing."""
import pytest
from parity_family import check_column, pairs, run_parity

FRAMEWORKS = ("pytorch", "lightning", "keras-torch")


@pytest.fixture(scope="module")
def parity(tmp_path_factory):
    return run_parity(tmp_path_factory.mktemp("parity"), FRAMEWORKS)


@pytest.mark.parametrize("framework, task", pairs(FRAMEWORKS))
def test_first_step_equals_the_numpy_reference(parity, framework, task):
    check_column(parity[1], framework, task)


def test_parity_run_passes(parity):
    code, rows = parity
    failed = [(r["cell"], r["failures"]) for r in rows if r["kind"] == "column" and r["passed"] is False]
    assert code == 0 and not failed, failed
