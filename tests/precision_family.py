"""Precision modes, shared by tests/<family>/test_precision_<family>.py: a column's MNIST MLP and CNN run in fp32,
mixed and bf16 through the real CLI; each row records the dtypes the model really trained in, as asked
(harness.checks.precision raises when they differ, so a bf16 cell that silently trained in fp32 is an error)."""
from conftest import assert_all_ok

from harness.matrix.tasks import PRECISION_DTYPES


def check_precision(run_cells, framework, variant, precisions=("fp32", "mixed", "bf16")):
    code, rows = run_cells("mnist_mlp,mnist_cnn", framework, "--variants", variant,
                           "--precision", ",".join(precisions), "--no-onnx", "--no-deploy")
    assert code == 0
    assert_all_ok(rows, expected_count=2 * len(precisions))
    for row in rows:
        asked = row["spec"]["precision"]
        assert row["cell"].endswith(f"/precision={asked}") == (asked != "fp32"), row["cell"]
        block = row["precision"]
        params, compute = PRECISION_DTYPES[asked]
        assert (block["requested"], block["params"], block["compute"]) == (asked, params, compute), (row["cell"], block)
        assert block["status"] == "ok"
        # 3x chance: bf16 Adam learns less in the smoke profile's 8-16 steps, but it learns
        assert row["metrics"]["test_accuracy"] > 0.3, (row["cell"], row["metrics"]["test_accuracy"])
