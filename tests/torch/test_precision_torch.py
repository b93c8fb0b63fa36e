"""PyTorch, Lightning and Keras-on-PyTorch MNIST cells in fp32, mixed and bf16: torch.autocast / a bfloat16
model, Trainer(precision="bf16-mixed" / "bf16-true"), Keras's "mixed_bfloat16" / "bfloat16" dtype policies;
the dtypes read back from the trained model."""
import pytest

from precision_family import check_precision


@pytest.mark.parametrize("framework, variant", [("pytorch", "eager"), ("pytorch", "compile"),
                                                ("lightning", "trainer"), ("keras-torch", "sequential")])
def test_precision_modes(run_cells, framework, variant):
    check_precision(run_cells, framework, variant)
