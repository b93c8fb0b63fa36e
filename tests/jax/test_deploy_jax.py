import pytest
from deploy_family import check_deploy


@pytest.mark.parametrize("framework, variant", [("jax", "jit"), ("flax", "nnx,linen"), ("haiku", "transform"),
                                                ("keras-jax", "sequential")])
def test_jax_export_round_trip(run_cells, tmp_path, framework, variant):
    check_deploy(run_cells, tmp_path, framework, variant, "jax.export", ".jax_export")
