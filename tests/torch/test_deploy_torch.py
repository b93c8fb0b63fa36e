import pytest
from deploy_family import check_deploy


@pytest.mark.parametrize("framework, variant", [("pytorch", "eager"), ("lightning", "trainer"),
                                                ("keras-torch", "sequential")])
def test_torch_export_round_trip(run_cells, tmp_path, framework, variant):
    check_deploy(run_cells, tmp_path, framework, variant, "torch.export", ".pt2")
