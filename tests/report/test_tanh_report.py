"""The tanh-regression section of the report, from made-up rows: test-loss curves, test MSE against the
linear fit and the linear_regression column, and a parameter-count table that flags a mismatch."""
from pathlib import Path

from reports.data import Run
from reports.per_task import tanh_section


def row(framework, variant, count, dataset="sin", mode="full-batch", task="tanh_regression", mse=0.05):
    metrics = {"test_mse": mse, "closed_form_test_mse": 0.2, "param_count": count, "param_count_expected": 97,
               "loss_curve": [0.4, 0.2, 0.1], "test_loss_curve": [0.3, 0.2, mse], "first_loss": 0.45}
    return {"task": task, "framework": framework, "variant": variant, "dataset": dataset, "mode": mode,
            "status": "ok", "cell": f"{task}/{framework}/{variant}/cpu/{dataset}/{mode}", "metrics": metrics,
            "timing": {}, "memory": {}, "device": "cpu"}


def test_section_compares_with_the_linear_fit_and_checks_parameter_counts():
    rows = [row("pytorch", "modules", 97), row("pytorch", "sequential", 97), row("jax", "modules", 97),
            row("jax", "sequential", 98),
            row("pytorch", "optim", None, dataset="sin", task="linear_regression", mse=0.19)]
    body = tanh_section(Run(Path("run"), {}, rows), "tanh_regression")
    vs, params = body["extra_tables"]
    first = next(r for r in vs.rows if r["framework"] == "pytorch")
    assert first["ratio"] == 0.05 / 0.2 and first["linreg_test_mse"] == 0.19
    equal = {r["framework"]: r["equal"] for r in params.rows}
    assert equal == {"pytorch": "yes", "jax": "NO"}
    assert "Test loss — sin, full-batch" in [c.title for c in body["groups"][0]["charts"] if c]
