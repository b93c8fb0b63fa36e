"""Deployment exports, shared by tests/<family>/test_deploy_<family>.py: the MNIST MLP and CNN of a column through
the real runner, exported in the framework's serving format, loaded back without the model code, and compared
with the live model (harness.checks.deploy_export)."""
from conftest import assert_all_ok

from harness.checks.deploy_export import MAX_ABS_DIFF
from harness.tracking import record


def check_deploy(run_cells, tmp_path, framework, variant, exporter, suffix):
    code, rows = run_cells("mnist_mlp,mnist_cnn", framework, "--variants", variant, "--no-onnx")
    assert code == 0
    assert_all_ok(rows, expected_count=2 * len(variant.split(",")))
    for row in rows:
        block = row["deploy"]
        assert block["status"] == "ok", (row["cell"], block)
        assert block["exporter"].startswith(exporter), block["exporter"]
        assert block["file"].endswith(suffix) and block["file_mb"] > 0.05  # the weights are in it
        cell_dir = tmp_path / "run1" / record.folder(row)
        assert (cell_dir / block["file"]).exists(), sorted(p.name for p in cell_dir.iterdir())
        # the batch axis is dynamic: two sizes from one file, each equal to the live model's outputs
        assert set(block["batches"]) == {"256", "37"}
        for per in block["batches"].values():
            assert per["max_abs_diff"] <= MAX_ABS_DIFF and per["argmax_agreement"] == 1.0, (row["cell"], per)
        assert block["load_s"] > 0 and block["export_s"] > 0 and block["first_call_s"] > 0
    # ONNX was switched off, the deployment export was not: the two are separate checks
    assert all(row["onnx"] in (None, {}) or row["onnx"].get("status") is None for row in rows), rows[0]["onnx"]
