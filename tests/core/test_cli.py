"""The command line: listing, one-line usage errors with exit 2, and no framework at import."""
import json
import subprocess
import sys

import pytest

from harness import cli


@pytest.mark.parametrize("argv, message", [
    (["run", "--tasks", "nope"], "unknown task 'nope'"),
    (["run", "--frameworks", "caffe"], "unknown framework 'caffe'"),
    (["run", "--tasks", "linear_regression", "--dataset", "mnist-ish"], "unknown dataset 'mnist-ish'"),
    (["run", "--tasks", "linear_regression", "--mode", "adam"], "unknown mode 'adam'"),
    (["run", "--profile", "huge"], "invalid choice: 'huge'"),
    (["run", "--tasks", "mnist_mlp", "--sweep", "batchsize=1,2"], "has no setting 'batchsize'"),
    (["run", "--tasks", "mnist_mlp", "--sweep", "lr=fast"], "bad value 'fast'"),
    (["run", "--bogus"], "unrecognized arguments: --bogus"),
    (["report", "/nonexistent"], "not a run dir"),
])
def test_usage_errors_are_one_line_exit_2(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_entry_point_exit_code():
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "--tasks", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("dlrosetta: error: unknown task 'nope'; choose from x2_descent, "
                                   "linear_regression, tanh_regression, mnist_mlp, mnist_cnn")


def test_list_json_shows_every_cell_and_importability(capsys):
    assert cli.main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    cells = {r["cell"]: r for r in rows}
    assert "x2_descent/pytorch/inplace/cpu" in cells
    assert cells["x2_descent/numpy/manual/cpu"]["importable"] is True
    na = cells["x2_descent/keras-jax/default/cpu"]
    assert na["applicable"] is False and "compile/fit" in na["not_applicable_reason"]
    frameworks = {r["framework"] for r in rows}
    assert {"pytorch", "lightning", "tf1", "tf2", "keras-tensorflow", "keras-jax", "keras-torch", "jax",
            "flax"} <= frameworks


def test_importing_harness_and_reports_imports_no_framework():
    code = ("import sys, harness, harness.cli, harness.running.runner, harness.running.cell, harness.matrix.data, harness.measuring.measure, "
            "harness.checks.onnx_parity, harness.matrix.registry, harness.measuring.environment, reports\n"
            "bad = [m for m in ('torch', 'tensorflow', 'jax', 'flax', 'keras', 'lightning', 'optax') "
            "if m in sys.modules]\nassert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_corrupt_data_file_stops_the_run_before_it_starts(tmp_path, capsys):
    """A corrupt dataset is one line and exit 2, and no cell runs (nothing half-done to clean up)."""
    bad = tmp_path / "data" / "california-housing"
    bad.mkdir(parents=True)
    (bad / "cal_housing.data").write_text("1,2,3\n")
    out = tmp_path / "run"
    code = cli.main(["run", "--tasks", "linear_regression", "--frameworks", "numpy", "--dataset", "california",
                     "--profile", "smoke", "--data-dir", str(tmp_path / "data"), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert "cal_housing.data" in err and "SHA-256" in err and err.count("\n") == 1
    assert not out.exists()
