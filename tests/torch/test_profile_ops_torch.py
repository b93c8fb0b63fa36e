from profile_ops_family import check_profile_ops


def test_profile_ops_pytorch(run_cells, tmp_path):
    check_profile_ops(run_cells, tmp_path, "pytorch", "eager", ("aten::mm", "aten::addmm"), "trace.json")
