"""TF1 and TF2 MNIST cells in fp32, mixed and bf16: explicit casts to bfloat16 in the forward (float32
variables) for mixed, bfloat16 variables for bf16, read back from the trained model."""
import pytest

from precision_family import check_precision


@pytest.mark.parametrize("framework, variant", [("tf1", "raw"), ("tf2", "function")])
def test_precision_modes(run_cells, framework, variant):
    check_precision(run_cells, framework, variant)
