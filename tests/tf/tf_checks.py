"""The properties every TensorFlow column must show, shared by test_tf1.py and test_tf2.py."""
from conftest import assert_all_ok, by_cell


def check_x2(rows, variants):
    assert_all_ok(rows, expected_count=variants)
    for r in rows:
        trajectory = r["metrics"]["trajectory"]
        assert len(trajectory) == 21
        for k, x in enumerate(trajectory):  # x_k = 10 * 0.8^k at every step, to float32 precision
            assert abs(x - 10 * 0.8**k) / (10 * 0.8**k) < 1e-5, (r["cell"], k, x)


def check_linreg_synthetic(rows, full_batch_cell):
    assert_all_ok(rows, expected_count=3)
    for r in rows:
        m = r["metrics"]
        assert m["train_mse"] < m["first_loss"], r["cell"]  # it learns, in every mode
        assert m["save_load"]["status"] == "ok" and m["save_load"]["max_abs_diff"] == 0.0, r["cell"]
        assert r["onnx"]["status"] == "ok", r["onnx"]
    full = by_cell(rows)[full_batch_cell]["metrics"]
    assert full["test_mse"] <= 1.01 * full["closed_form_test_mse"]
    assert full["param_error"] < 1e-2


def check_linreg_real(rows):
    assert_all_ok(rows, expected_count=2)
    for r in rows:
        m = r["metrics"]
        assert m["train_mse"] < m["first_loss"] and m["test_mse"] < 1.1 * m["closed_form_test_mse"], r["cell"]


def check_mnist(rows, variants, param_count):
    assert_all_ok(rows, expected_count=variants)
    for r in rows:
        m = r["metrics"]
        assert m["param_count"] == param_count
        assert m["train_loss_curve"][-1] < m["first_loss"], r["cell"]  # it learns
        # checkpoint round trip: the same float32 values back, so the same predictions bit for bit
        assert m["save_load"]["status"] == "ok" and m["save_load"]["max_abs_diff"] == 0.0, m["save_load"]
        assert r["onnx"]["status"] == "ok", r["onnx"]
