"""PyTorch cells through the real runner. Fails (never skips) where torch is missing."""
import pytest

from conftest import assert_all_ok


def test_x2_every_variant_matches_closed_form(run_cells):
    code, rows = run_cells("x2_descent", "pytorch")
    assert code == 0
    assert_all_ok(rows, expected_count=3)
    exact = 10 * 0.8**20
    for r in rows:
        assert abs(r["metrics"]["x_final"] - exact) / exact < 1e-5, r["cell"]
        assert len(r["metrics"]["trajectory"]) == 21


@pytest.mark.parametrize("variant", ["eager", "dataloader"])
def test_mnist_mlp_smoke(run_cells, variant):
    code, rows = run_cells("mnist_mlp", "pytorch", "--variants", variant)
    assert_all_ok(rows, expected_count=1)
    m = rows[0]["metrics"]
    assert m["param_count"] == 235_146
    assert m["train_loss_curve"][-1] < m["first_loss"]  # it learns
    assert m["save_load"]["status"] == "ok" and m["save_load"]["max_abs_diff"] == 0.0
    assert rows[0]["onnx"]["status"] == "ok", rows[0]["onnx"]
