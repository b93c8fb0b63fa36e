"""Tanh regression, shared by tests/<family>/test_tanh_<family>.py: each column of a family, both variants,
through the real runner on the smoke profile. Fails, never skips, where a framework is missing (its cells
are `unavailable`, which `assert_all_ok` rejects)."""
from conftest import assert_all_ok

SIN_PARAMS = 1 * 32 + 32 + 32 + 1  # d = 1, H = 32


def check_tanh_column(run_cells, framework):
    """SGD full-batch (with the ONNX export) and Adam mini-batch, "modules" and "sequential": every cell
    learns (train and test loss fall), has d·H + 2H + 1 parameters, reloads bit for bit, and exports."""
    _, full = run_cells("tanh_regression", framework, "--dataset", "sin", "--modes", "full-batch")
    _, adam = run_cells("tanh_regression", framework, "--dataset", "sin", "--modes", "adam-minibatch", "--no-onnx")
    rows = full + adam
    assert_all_ok(rows, expected_count=4)
    assert sorted((r["variant"], r["mode"]) for r in rows) == [
        ("modules", "adam-minibatch"), ("modules", "full-batch"),
        ("sequential", "adam-minibatch"), ("sequential", "full-batch")]
    for r in rows:
        m = r["metrics"]
        assert m["param_count"] == m["param_count_expected"] == SIN_PARAMS, r["cell"]
        assert m["loss_curve"][-1] < m["first_loss"], r["cell"]  # it learns
        # the test set too, against the untrained model's loss (the first step's; the first epoch's test
        # loss is no baseline: two smoke epochs of Adam may pass the noise floor and come back up)
        assert m["test_loss_curve"][-1] < m["first_loss"], r["cell"]
        assert len(m["test_loss_curve"]) == len(m["loss_curve"]), r["cell"]  # one test loss per epoch
        assert m["test_mse"] == m["test_loss_curve"][-1], r["cell"]
        assert m["save_load"]["status"] == "ok" and m["save_load"]["max_abs_diff"] == 0.0, r["cell"]
    for r in full:
        if framework != "numpy":  # the numpy reference has no exporter
            assert r["onnx"]["status"] == "ok", (r["cell"], r["onnx"])
