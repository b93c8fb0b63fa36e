"""Keras 3 on JAX, MNIST cells in fp32, mixed and bf16: the "mixed_bfloat16" and "bfloat16" dtype policies,
the dtypes read back from the trained model."""
from precision_family import check_precision


def test_precision_modes(run_cells):
    check_precision(run_cells, "keras-jax", "sequential")
