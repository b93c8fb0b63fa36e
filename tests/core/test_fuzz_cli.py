"""The command line, fuzzed with Hypothesis: random flags, values and combinations always give a result
or a one-line usage error (exit 2), never a traceback. `run --dry-run` walks the same validation and
planning as a real run without starting cells; `list` and `report` are fuzzed as they are."""
import contextlib
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import cli

WORDS = ["x2_descent", "linear_regression", "mnist_mlp", "mnist_cnn", "numpy", "pytorch", "jax", "tf2", "nope",
         "synthetic", "california", "mnist", "full-batch", "sgd", "core", "torch", "smoke", "quick", "full"]
SETTINGS = ["lr", "epochs", "batch_size", "steps", "seed", "hidden", "dataset", "target_accuracy", "bogus",
            "stop_at_target", "train_subset", "test_fraction"]
values = st.one_of(
    st.sampled_from(["0", "-1", "1", "2", "1e6", "1e-3", "nan", "inf", "-inf", "1e309", "none", "true", "", " ",
                     "<script>", "2.5", "10000000000000000000000", "0x10"]),
    st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True).map(str),
    st.text(max_size=12))
flags = st.one_of(
    st.tuples(st.sampled_from(["--tasks", "--frameworks", "--family", "--variants", "--dataset", "--mode"]),
              st.lists(st.sampled_from(WORDS), min_size=0, max_size=3).map(",".join)),
    st.tuples(st.sampled_from(["--timeout", "--threads", "--repeat", "--rerun-disturbed", "--max-memory",
                               "--order-seed", "--profile", "--device", "--init"]), values),
    st.tuples(st.sampled_from(["--set", "--sweep"]),
              st.tuples(st.sampled_from(SETTINGS), values).map(lambda kv: f"{kv[0]}={kv[1]}")),
    st.tuples(st.sampled_from(["--resume", "--no-onnx", "--no-progress", "--bogus", "-x"])),
    st.tuples(values))


def call(argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(argv)
    return code, err.getvalue()


def check(code, err):
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err
    if code == 2:
        assert err.startswith("dlrosetta: error: ") and err.count("\n") == 1, err


@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(flags, max_size=6))
def test_run_dry_run_never_tracebacks(tmp_path, argv):
    argv = [part for flag in argv for part in flag]
    out = tmp_path / "never-written"
    code, err = call(["run", "--dry-run", "--out", str(out), *argv])
    check(code, err)
    assert not out.exists()  # validation and planning write nothing


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(flags, max_size=5))
def test_list_never_tracebacks(argv):
    check(*call(["list", *[part for flag in argv for part in flag]]))


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.lists(values, min_size=0, max_size=3))
def test_report_arguments_never_traceback(paths):
    code, err = call(["report", *paths])
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1
