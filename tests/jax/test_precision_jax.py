"""Precision modes of the JAX columns (plain JAX, Flax nnx, Haiku): each MNIST MLP and CNN trains in fp32,
mixed and bf16 through the real CLI and reports the dtypes it really trained in."""
import pytest
from precision_family import check_precision


@pytest.mark.parametrize("framework, variant", [("jax", "jit"), ("flax", "nnx"), ("haiku", "transform")])
def test_precision_modes(run_cells, framework, variant):
    check_precision(run_cells, framework, variant)
