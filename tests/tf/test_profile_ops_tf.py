from profile_ops_family import check_profile_ops


def test_profile_ops_tf2(run_cells, tmp_path):
    check_profile_ops(run_cells, tmp_path, "tf2", "function", ("MatMul",), ".xplane.pb")
