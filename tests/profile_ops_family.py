"""`--profile-ops`, shared by tests/<family>/test_profile_ops_<family>.py: one MNIST MLP cell under the family's own
profiler, through the real runner. The trace must be on disk in the profiler's format and the row must name the
operators that dominate an MLP step (its matrix multiplications), as that framework names them."""
from conftest import assert_all_ok


def check_profile_ops(run_cells, tmp_path, framework, variant, matmul_names, trace_suffix):
    code, rows = run_cells("mnist_mlp", framework, "--variants", variant, "--profile-ops", "--no-onnx")
    assert code == 0
    assert_all_ok(rows, expected_count=1)
    row = rows[0]
    block = row["ops_profile"]
    assert block["status"] == "ok", block
    first, last = block["steps"]
    assert last - first + 1 == 5  # PROFILE_STEPS, in the smoke run's 16 steps
    cell_dir = next(tmp_path.glob("run*/cells/*"))  # the run's only cell folder
    assert any(t.endswith(trace_suffix) and (cell_dir / t).stat().st_size > 0 for t in block["trace"]), block["trace"]
    top = block["top"]
    assert top and all(op["ms"] > 0 and op["calls"] >= 1 for op in top)
    assert 0.5 < sum(op["share"] for op in top) <= 1.0 + 1e-6  # the top ten hold most of the operator time
    # the MLP's three matmuls (forward and backward) are among the top operators
    assert any(any(name in op["op"] for name in matmul_names) for op in top[:3]), [op["op"] for op in top]
    # the traced steps are not steady-state times: the median excludes them
    assert row["timing"]["step_s"]["n"] == row["timing"]["steps"] - 1 - 5
