"""--precision: a matrix dimension of the MNIST tasks, validated before anything is written, and a check that
reads the trained model's dtypes back, so that a cell asked for bf16 that trained in float32 is an error."""
import textwrap
import types

import pytest

from harness import cli
from harness.checks import precision
from harness.matrix import registry
from harness.matrix.tasks import PRECISIONS, make_spec
from harness.running.runner import read_rows

# An MNIST "framework" in numpy: one linear layer, whose precision_used reports what it really holds
# (always float32: it has no bfloat16 path), so that asking it for mixed or bf16 must fail.
SILENT_FP32 = textwrap.dedent('''
    import numpy as np
    VARIANTS = {"linear": "one numpy matrix, trained by nothing"}

    def build_model(spec):
        return {"w": np.zeros((spec.input_size, spec.num_classes), np.float32)}

    def train(model, spec, data, rec):
        for _ in range(2):
            rec.step(2.3)
        rec.epoch(model)
        return model

    def predict(model, x):
        logits = np.asarray(x, np.float32).reshape(len(x), -1) @ model["w"]
        return logits + np.arange(10, dtype=np.float32)

    def precision_used(model, spec, x):
        logits = predict(model, x)
        return {"params": model["w"].dtype, "compute": logits.dtype}
''')


@pytest.fixture
def silent_fp32(impl_package, monkeypatch):
    monkeypatch.delitem(registry.NOT_APPLICABLE, ("mnist_mlp", "numpy"))  # the real numpy column has no MNIST
    return impl_package("fp32_only", "mnist_mlp", SILENT_FP32)


def test_dtype_names_are_normalised():
    assert precision.dtype_name("torch.bfloat16") == "bfloat16"
    assert precision.dtype_name("<dtype: 'bfloat16'>") == "bfloat16"
    assert precision.dtype_name(types.SimpleNamespace(name="float32")) == "float32"


@pytest.mark.parametrize("asked, used, ok", [
    ("fp32", ("float32", "float32"), True), ("mixed", ("float32", "bfloat16"), True),
    ("bf16", ("bfloat16", "bfloat16"), True),
    ("bf16", ("float32", "float32"), False),  # silently trained in float32
    ("mixed", ("bfloat16", "bfloat16"), False),  # the weights were cast too: that is bf16, not mixed
    ("mixed", ("float32", "float32"), False),  # autocast never applied
])
def test_check_compares_the_model_dtypes_with_the_request(asked, used, ok):
    module = types.SimpleNamespace(__name__="implementations.mnist_mlp.fake",
                                   precision_used=lambda model, spec, x: {"params": used[0], "compute": used[1]})
    spec = make_spec("mnist_mlp", "smoke", precision=asked)
    if ok:
        block = precision.check(module, None, spec, None)
        assert block["status"] == "ok" and (block["params"], block["compute"]) == used
    else:
        with pytest.raises(precision.PrecisionMismatch, match=f"--precision {asked} expects"):
            precision.check(module, None, spec, None)


def test_a_file_without_precision_modes_runs_fp32_only():
    module = types.SimpleNamespace(__name__="implementations.mnist_mlp.fake")
    assert precision.check(module, None, make_spec("mnist_mlp", "smoke"), None) is None
    with pytest.raises(precision.PrecisionMismatch, match="no precision modes"):
        precision.check(module, None, make_spec("mnist_mlp", "smoke", precision="bf16"), None)


def test_precision_is_an_mnist_dimension_with_plain_fp32_keys(capsys):
    assert cli.main(["run", "--tasks", "mnist_mlp,linear_regression", "--frameworks", "pytorch",
                     "--precision", "fp32,bf16,mixed", "--dry-run", "--profile", "smoke"]) == 0
    keys = [line.split()[-1] for line in capsys.readouterr().out.splitlines() if line.startswith("round")]
    mnist = [k for k in keys if k.startswith("mnist_mlp/pytorch/eager")]
    assert mnist == ["mnist_mlp/pytorch/eager/cpu/mnist", "mnist_mlp/pytorch/eager/cpu/mnist/precision=bf16",
                     "mnist_mlp/pytorch/eager/cpu/mnist/precision=mixed"], keys
    assert not any("precision" in k for k in keys if not k.startswith("mnist")), keys  # one cell each, no suffix


@pytest.mark.parametrize("value", ["fp16", "", "bf16,int8"])
def test_bad_precision_is_a_usage_error_before_anything_is_written(value, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["run", "--tasks", "mnist_mlp", "--precision", value, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--precision: bad value" in err and "fp32, mixed, bf16" in err and err.count("\n") == 1
    assert not out.exists()
    with pytest.raises(Exception, match="unknown precision"):
        make_spec("mnist_mlp", "smoke", precision="fp16")
    assert PRECISIONS == ("fp32", "mixed", "bf16")


def test_set_precision_points_to_the_flag(capsys):
    assert cli.main(["run", "--tasks", "mnist_mlp", "--set", "precision=bf16"]) == 2
    assert "chosen with --precision" in capsys.readouterr().err


def test_a_cell_that_trained_in_fp32_when_asked_for_bf16_is_an_error(silent_fp32, capsys):
    out = silent_fp32 / "run"
    code = cli.main(["run", "--tasks", "mnist_mlp", "--frameworks", "numpy", "--profile", "smoke",
                     "--precision", "fp32,bf16", "--out", str(out), "--no-progress", "--no-onnx", "--no-deploy"])
    rows = {r["cell"]: r for r in read_rows(out / "results.jsonl")}
    bf16 = rows["mnist_mlp/numpy/linear/cpu/mnist/precision=bf16"]
    assert bf16["status"] == "failed", bf16["status"]
    assert "expects bfloat16 weights and bfloat16 compute" in bf16["error"]
    assert "trained with float32 weights and float32 compute" in bf16["error"]
    fp32 = rows["mnist_mlp/numpy/linear/cpu/mnist"]  # untrained: at chance, so diverged; its dtypes were checked
    assert (fp32["precision"]["params"], fp32["precision"]["compute"], fp32["precision"]["status"]) == (
        "float32", "float32", "ok")
    assert code == 1


def test_an_fp32_only_idiom_is_not_applicable_in_the_other_precisions():
    assert registry.applicability("mnist_mlp", "tf1", "legacy_layers") is None
    assert registry.applicability("mnist_mlp", "tf1", "legacy_layers", (("precision", "fp32"),)) is None
    reason = registry.applicability("mnist_cnn", "tf1", "legacy_layers", (("precision", "bf16"),))
    assert reason and "float32 variables" in reason
    assert registry.applicability("mnist_mlp", "tf1", "raw", (("precision", "bf16"),)) is None
