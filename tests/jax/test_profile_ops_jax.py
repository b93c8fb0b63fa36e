from profile_ops_family import check_profile_ops


def test_profile_ops_jax(run_cells, tmp_path):
    # XLA:CPU names its fused ops: the matmuls are "dot" or a fusion around one
    check_profile_ops(run_cells, tmp_path, "jax", "jit", ("dot", "fusion"), ".xplane.pb")
