"""ONNX parity and the cross-framework check, framework-free: tiny models written with onnx.helper.

A fake implementation module stands in for a framework: `predict` is numpy, `export_onnx` writes the
same computation as an ONNX graph (optionally wrong, with a fixed batch axis, or failing), so every
status of `harness.checks.onnx_parity.check` and the int8 quantization can be checked in milliseconds.
"""
import json
import types

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from harness.checks import onnx_cross, onnx_parity
from harness.checks.onnx_parity import compare, parity_status
from harness.matrix.tasks import make_spec, spec_to_dict

D, K = 64, 10  # features, classes of the fake classifier


def linear_graph(path, w, b, batch="batch", value_info=True, external=False):
    """y = x @ w + b as a Gemm with the weight stored [out, in] and transB=1, the way the torch
    exporter writes nn.Linear, with initializer shapes in value_info as the exporters record them."""
    n_in, n_out = w.shape
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, n_in])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, n_out])
    weight = numpy_helper.from_array(np.ascontiguousarray(w.T, np.float32), "weight")
    bias = numpy_helper.from_array(np.asarray(b, np.float32), "bias")
    node = helper.make_node("Gemm", ["x", "weight", "bias"], ["y"], transB=1)
    graph = helper.make_graph([node], "linear", [x], [y], [weight, bias])
    if value_info:
        graph.value_info.extend([helper.make_tensor_value_info("weight", TensorProto.FLOAT, [n_out, n_in]),
                                 helper.make_tensor_value_info("bias", TensorProto.FLOAT, [n_out])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="test")
    model.ir_version = 8
    if external:
        onnx.save_model(model, path, save_as_external_data=True, location="model.onnx.data",
                        size_threshold=0)
    else:
        onnx.save_model(model, path)


def fake_module(w, b, *, batch="batch", offset=0.0, export_error=None, external=False):
    module = types.ModuleType("fake_impl")

    def predict(model, x):
        return np.asarray(x, np.float32).reshape(len(x), -1) @ w + b

    def export_onnx(model, path, example):
        if export_error:
            raise export_error
        linear_graph(path, w, b + offset, batch=batch, external=external)
        return {"exporter": "onnx.helper (test)"}

    module.predict, module.export_onnx = predict, export_onnx
    return module


@pytest.fixture
def weights():
    rng = np.random.default_rng(0)
    return rng.normal(size=(D, K)).astype(np.float32) / 8, rng.normal(size=K).astype(np.float32)


@pytest.fixture
def mnist_like(weights):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, D)).astype(np.float32)
    w, b = weights
    y = (x @ w + b).argmax(1)
    y[:30] = (y[:30] + 1) % K  # 90 % accuracy, so a drop is measurable
    return types.SimpleNamespace(x_test=x, y_test=y.astype(np.int64))


SPEC = types.SimpleNamespace(task="mnist_mlp")


# --------------------------------------------------------------------------------------------------
def test_compare_counts_elements_outside_tolerance_and_argmax():
    native = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    ort = native.copy()
    ort[0, 0] += 1e-6  # inside atol
    ort[1, 2] += 0.01  # outside atol + rtol * 1
    r = compare(native, ort, classify=True)
    assert r["max_abs_diff"] == pytest.approx(0.01)
    assert r["mismatch_pct"] == pytest.approx(100 / 6)
    assert r["argmax_agreement"] == 1.0
    ort[0] = [9.0, 0.0, 0.0]  # first row's argmax flips
    assert compare(native, ort, classify=True)["argmax_agreement"] == 0.5
    assert "argmax_agreement" not in compare(native[:, :1], ort[:, :1], classify=False)
    with pytest.raises(ValueError, match="shapes differ"):
        compare(native, ort[:, :2], classify=True)


def test_parity_status_needs_every_batch_within_tolerance_and_full_agreement():
    good = {"max_abs_diff": 5e-6, "argmax_agreement": 1.0}
    assert parity_status({256: good, 37: good}) == "ok"
    assert parity_status({256: good, 37: {**good, "max_abs_diff": 2e-4}}) == "mismatch"
    assert parity_status({256: good, 37: {**good, "argmax_agreement": 0.99}}) == "mismatch"
    assert parity_status({256: {"max_abs_diff": 1e-4}}) == "ok"  # regression: no argmax


def test_feed_reshapes_to_the_declared_layout_and_keeps_symbolic_dims():
    def session(shape):
        inp = types.SimpleNamespace(name="input", shape=shape)
        return types.SimpleNamespace(get_inputs=lambda: [inp])

    x = np.arange(2 * 28 * 28, dtype=np.float64).reshape(2, 28, 28, 1)  # NHWC, as the harness holds it
    fed = onnx_parity._feed(session(["N", 1, 28, 28]), x)["input"]
    assert fed.shape == (2, 1, 28, 28) and fed.dtype == np.float32 and fed.flags.c_contiguous
    assert np.array_equal(fed.reshape(-1), x.reshape(-1))  # a unit axis moved: no data moved
    assert onnx_parity._feed(session(["batch", 784]), x)["input"].shape == (2, 784)
    assert onnx_parity._feed(session([None, "h", "w", 1]), x)["input"].shape == (2, 28, 28, 1)  # left as is


def test_describe_and_file_size_count_external_data(tmp_path, weights):
    w, b = weights
    inline, external = tmp_path / "a" / "model.onnx", tmp_path / "b" / "model.onnx"
    inline.parent.mkdir(), external.parent.mkdir()
    linear_graph(str(inline), w, b)
    linear_graph(str(external), w, b, external=True)
    a, e = onnx_parity.describe(inline), onnx_parity.describe(external)
    assert (external.parent / "model.onnx.data").stat().st_size >= w.nbytes
    assert e["file_mb"] == pytest.approx(a["file_mb"], rel=0.2)  # the weights count wherever they are
    assert a["file_mb"] * 2**20 > w.nbytes
    assert a["opset"] == 17 and a["op_types"] == {"Gemm": 1} and a["batch_symbolic"] is True
    assert a["inputs"] == [{"name": "x", "shape": ["batch", D]}]
    linear_graph(str(inline), w, b, batch=8)
    assert onnx_parity.describe(inline)["batch_symbolic"] is False


def test_gemm_to_matmul_keeps_the_arithmetic_of_every_exporters_dense_layer(tmp_path, weights):
    import onnxruntime as ort

    w, b = weights
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", D])
    y_info = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", K])
    inits = [numpy_helper.from_array(np.ascontiguousarray(w.T), "w_t"), numpy_helper.from_array(w, "w"),
             numpy_helper.from_array(b, "b"), numpy_helper.from_array(np.float32(0.0), "zero"),
             numpy_helper.from_array(b[None], "b_row")]
    layers = {  # torch: Gemm(transB=1) + bias; jax2onnx: Gemm(beta=0) then Add; tf2onnx-like: MatMul + Add
        "torch": [helper.make_node("Gemm", ["x", "w_t", "b"], ["y"], transB=1, name="g")],
        "jax2onnx": [helper.make_node("Gemm", ["x", "w", "zero"], ["h"], beta=0.0, name="g"),
                     helper.make_node("Add", ["h", "b_row"], ["y"], name="a")],
        "alpha2": [helper.make_node("Gemm", ["x", "w", "b"], ["y"], alpha=2.0, name="g")],  # left alone
    }
    x = np.random.default_rng(4).normal(size=(5, D)).astype(np.float32)
    for name, nodes in layers.items():
        graph = helper.make_graph(nodes, name, [x_info], [y_info], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        before = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
        n = onnx_parity.gemm_to_matmul(model)
        onnx.checker.check_model(model)
        after = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
        assert np.allclose(before, after, atol=1e-6), name
        assert n == (0 if name == "alpha2" else 1), name
        ops = [nd.op_type for nd in model.graph.node]
        assert ("Gemm" in ops) == (name == "alpha2"), (name, ops)


# --------------------------------------------------------------------------------------------------
def test_check_ok_records_file_facts_parity_latency_and_int8(tmp_path, weights, mnist_like):
    w, b = weights
    native = {"batch_1": {"median": 0.1}, "batch_256": {"median": 1.0}}
    row = onnx_parity.check(fake_module(w, b), None, SPEC, mnist_like, tmp_path, native_infer_ms=native)
    assert row["status"] == "ok", row
    assert row["error"] is None and row["stage"] is None
    assert row["exporter"] == "onnx.helper (test)" and row["opset"] == 17
    assert row["file_mb"] > 0 and row["export_s"] >= 0 and row["check_s"] >= row["export_s"]
    assert set(row["batches"]) == {"256", "37"} and row["dynamic_batch"] is True
    assert row["max_abs_diff"] <= onnx_parity.MAX_ABS_DIFF and row["argmax_agreement"] == 1.0
    assert row["ort_test_accuracy"] == pytest.approx(0.9)
    assert row["native_infer_ms"] == native
    for batch in ("batch_1", "batch_256"):
        assert onnx_parity.MIN_REPEATS <= row["ort_infer_ms"][batch]["n"] <= onnx_parity.REPEATS[batch]
    q = row["quantized"]
    # quantize_dynamic on a Gemm with transB=1 and initializer shapes in value_info: the case of
    # microsoft/onnxruntime#25890 that the harness works around
    assert q["status"] == "ok", q
    assert q["quantized_ops"] == {"MatMulInteger": 1} and q["gemm_to_matmul"] == 1
    assert q["file_mb"] < row["file_mb"]
    assert q["eval_rows"] == 300 and q["eval_complete"] is True
    assert q["fp32_test_accuracy"] == row["ort_test_accuracy"]
    assert q["accuracy_drop"] == pytest.approx(100 * (row["ort_test_accuracy"] - q["test_accuracy"]))
    assert abs(q["accuracy_drop"]) < 5 and q["argmax_agreement_vs_fp32"] > 0.9
    assert q["speedup_batch_256"] > 0 and q["ort_infer_ms"]["batch_1"]["median"] > 0
    assert (tmp_path / "model.int8.onnx").exists()
    json.dumps(row)  # the row is plain JSON


def test_time_budgets_bound_latency_repeats_and_int8_rows(tmp_path, weights, monkeypatch):
    w, b = weights
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1200, D)).astype(np.float32)
    data = types.SimpleNamespace(x_test=x, y_test=(x @ w + b).argmax(1))
    monkeypatch.setattr(onnx_parity, "LATENCY_BUDGET_S", {"batch_1": 0.0, "batch_256": 0.0})
    monkeypatch.setattr(onnx_parity, "QUANT_EVAL_BUDGET_S", 0.0)
    monkeypatch.setattr(onnx_parity, "QUANT_MIN_ROWS", 100)
    row = onnx_parity.check(fake_module(w, b), None, SPEC, data, tmp_path)
    assert row["status"] == "ok" and row["ort_test_accuracy"] == 1.0  # fp32 still sees every row
    q = row["quantized"]
    assert row["ort_infer_ms"]["batch_256"]["n"] == q["ort_infer_ms"]["batch_256"]["n"] == onnx_parity.MIN_REPEATS
    assert q["eval_rows"] == 500 and q["eval_complete"] is False  # one chunk, then the budget stops it
    assert q["accuracy_drop"] == pytest.approx(100 * (q["fp32_test_accuracy"] - q["test_accuracy"]))


def test_check_with_external_weights_and_a_small_test_set(tmp_path, weights, mnist_like):
    w, b = weights
    small = types.SimpleNamespace(x_test=mnist_like.x_test[:20], y_test=mnist_like.y_test[:20])
    row = onnx_parity.check(fake_module(w, b, external=True), None, SPEC, small, tmp_path)
    assert row["status"] == "ok", row
    assert row["file_mb"] * 2**20 > w.nbytes  # model.onnx.data counted
    assert row["quantized"]["status"] == "ok"


def test_check_mismatch_when_the_file_computes_something_else(tmp_path, weights, mnist_like):
    w, b = weights
    row = onnx_parity.check(fake_module(w, b, offset=1e-3), None, SPEC, mnist_like, tmp_path)
    assert row["status"] == "mismatch"
    assert row["max_abs_diff"] == pytest.approx(1e-3, rel=1e-2)


def test_check_fixed_batch_axis_is_failed_and_says_so(tmp_path, weights, mnist_like):
    w, b = weights
    row = onnx_parity.check(fake_module(w, b, batch=256), None, SPEC, mnist_like, tmp_path)
    assert row["status"] == "failed" and row["dynamic_batch"] is False
    assert row["stage"] == "run at batch 37" and row["error"]
    assert row["batch_symbolic"] is False and "256" in row["batches"]


def test_check_output_of_another_shape_is_failed_at_the_comparison(tmp_path, weights, mnist_like):
    w, b = weights
    module = fake_module(w, b)
    module.predict = lambda model, x: np.zeros((len(x), K + 1), np.float32)
    row = onnx_parity.check(module, None, SPEC, mnist_like, tmp_path)
    assert row["status"] == "failed" and row["stage"] == "compare at batch 256"
    assert row["error"].startswith("ValueError: output shapes differ") and row["dynamic_batch"] is None


def test_check_a_file_onnxruntime_cannot_run_is_unsupported(tmp_path, mnist_like):
    """jax2onnx's lowering of lax.reduce_window max (Keras on JAX, Haiku): a MaxPool over four
    'spatial' axes of a 6-D tensor. Valid ONNX; onnxruntime rejects it at the first run."""
    module = types.ModuleType("fake_pool")
    module.predict = lambda model, x: np.asarray(x).reshape(len(x), 4, 4, 4)[:, ::2, ::2, :]

    def export_onnx(model, path, example):
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, 4, 4])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2, 2, 4])
        axes0, axes1 = numpy_helper.from_array(np.array([0], np.int64), "a0"), \
            numpy_helper.from_array(np.array([0], np.int64), "a1")
        nodes = [helper.make_node("Unsqueeze", ["x", "a0"], ["u0"]),
                 helper.make_node("Unsqueeze", ["u0", "a1"], ["u1"]),
                 helper.make_node("MaxPool", ["u1"], ["p"], kernel_shape=[1, 2, 2, 1], strides=[1, 2, 2, 1]),
                 helper.make_node("Squeeze", ["p", "a0"], ["s0"]),
                 helper.make_node("Squeeze", ["s0", "a1"], ["y"])]
        model = helper.make_model(helper.make_graph(nodes, "pool", [x], [y], [axes0, axes1]),
                                  opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.save_model(model, path)

    module.export_onnx = export_onnx
    data = types.SimpleNamespace(x_test=mnist_like.x_test, y_test=mnist_like.y_test)
    row = onnx_parity.check(module, None, SPEC, data, tmp_path)
    assert row["status"] == "unsupported" and row["stage"] == "run at batch 256", row
    assert "Unsupported pooling size" in row["error"]
    assert row["op_types"]["MaxPool"] == 1 and row["opset"] == 17  # the file's facts are still recorded


def test_check_exporter_error_is_unsupported_with_its_message(tmp_path, weights, mnist_like):
    w, b = weights
    err = TypeError("max_pool() got positional arguments\nsecond line")
    row = onnx_parity.check(fake_module(w, b, export_error=err), None, SPEC, mnist_like, tmp_path)
    assert row["status"] == "unsupported" and row["stage"] == "export"
    assert row["error"] == "TypeError: max_pool() got positional arguments"  # one line
    assert "export_s" in row


def test_check_invalid_file_is_unsupported_at_the_checker(tmp_path, weights, mnist_like):
    w, b = weights
    module = fake_module(w, b)

    def export_onnx(model, path, example):  # a node reading a tensor nobody produces
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", D])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", D])
        graph = helper.make_graph([helper.make_node("Relu", ["nowhere"], ["y"])], "bad", [x], [y])
        onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)

    module.export_onnx = export_onnx
    row = onnx_parity.check(module, None, SPEC, mnist_like, tmp_path)
    assert row["status"] == "unsupported" and row["stage"] == "checker" and row["error"]


def test_check_without_export_onnx_is_not_applicable(tmp_path, mnist_like):
    module = types.ModuleType("implementations.linear_regression.numpy")
    row = onnx_parity.check(module, None, SPEC, mnist_like, tmp_path)
    assert row == {"status": "not_applicable",
                   "error": "implementations.linear_regression.numpy defines no export_onnx"}


def test_check_reports_an_int8_pass_that_quantized_nothing(tmp_path, weights, mnist_like):
    w, b = weights
    module = fake_module(w, b)

    def export_onnx(model, path, example):  # Gemm with alpha != 1: neither rewritten nor quantized
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", D])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", K])
        inits = [numpy_helper.from_array(w / 2, "w"), numpy_helper.from_array(b, "b")]
        node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], alpha=2.0)
        model = helper.make_model(helper.make_graph([node], "g", [x], [y], inits),
                                  opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.save_model(model, path)

    module.export_onnx = export_onnx
    row = onnx_parity.check(module, None, SPEC, mnist_like, tmp_path)
    assert row["status"] == "ok", row  # the fp32 file is fine
    q = row["quantized"]
    assert q["status"] == "failed" and q["error"] == "ValueError: quantize_dynamic quantized no operator of Gemm×1"


def test_check_regression_reports_mse_and_its_int8_increase(tmp_path):
    rng = np.random.default_rng(2)
    w, b = rng.normal(size=(8, 1)).astype(np.float32), np.array([0.5], np.float32)
    x = rng.normal(size=(400, 8)).astype(np.float32)
    data = types.SimpleNamespace(x_test=x, y_test=(x @ w + b + 0.1 * rng.normal(size=(400, 1))).astype(np.float32))
    row = onnx_parity.check(fake_module(w, b), None, types.SimpleNamespace(task="linear_regression"), data, tmp_path)
    assert row["status"] == "ok" and "argmax_agreement" not in row
    assert row["ort_test_mse"] == pytest.approx(0.01, rel=0.3)
    q = row["quantized"]
    assert q["status"] == "ok" and "test_mse" in q and "mse_increase_pct" in q


# --------------------------------------------------------------------------------------------------
def make_run(tmp_path, columns):
    """A run dir with linear-regression rows whose ONNX files are written from (w, b) per column."""
    from harness.matrix import data as data_mod

    spec = make_spec("linear_regression", "smoke")
    d = data_mod.load(spec)
    rows = []
    for name, status, w, b in columns:
        rel = f"cells/linear_regression__{name}__full-batch__cpu__synthetic/model.onnx"
        onnx_block = {"status": status, "exporter": "test", "file": rel, "error": None}
        if w is not None:
            (tmp_path / rel).parent.mkdir(parents=True)
            linear_graph(str(tmp_path / rel), w, b)
        else:
            onnx_block["error"] = "KeyError: 'keras_tensor_7'"
        pred = d.x_test @ w + b if w is not None else np.zeros_like(d.y_test)
        rows.append({"cell": f"linear_regression/{name}/full-batch/cpu/synthetic", "task": "linear_regression",
                     "framework": name, "variant": "full-batch", "dataset": "synthetic", "mode": "full-batch",
                     "params": {}, "profile": "smoke", "init": "native", "status": "ok",
                     "spec": {**spec_to_dict(spec), "variant": name},
                     "metrics": {"test_mse": float(np.mean((pred - d.y_test) ** 2))}, "onnx": onnx_block})
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def least_squares():
    from harness.matrix import data as data_mod

    d = data_mod.load(make_spec("linear_regression", "smoke"))
    a = np.linalg.lstsq(np.c_[d.x_train, np.ones(len(d.x_train))], d.y_train, rcond=None)[0]
    return a[:-1].astype(np.float32), a[-1].astype(np.float32)


def test_cross_check_runs_every_file_on_the_same_inputs(tmp_path):
    w, bias = least_squares()
    make_run(tmp_path, [("alpha", "ok", w, bias), ("beta", "ok", w + 1e-7, bias),
                        ("gamma", "unsupported", None, None)])
    path = onnx_cross.write(tmp_path)
    result = json.loads(path.read_text())
    (g,) = result["groups"]
    assert g["task"] == "linear_regression" and g["same_weights"] is True
    assert [c["framework"] for c in g["columns"]] == ["alpha", "beta"]
    assert all(c["status"] == "ok" for c in g["columns"])
    assert g["columns"][0]["ort_test_mse"] == pytest.approx(g["columns"][0]["native_test_mse"], rel=1e-5)
    assert g["not_run"] == [{"cell": "linear_regression/gamma/full-batch/cpu/synthetic", "status": "ok",
                             "onnx_status": "unsupported", "error": "KeyError: 'keras_tensor_7'"}]
    assert g["mse_spread_pct"] < 0.01 and g["within_tolerance"] is True
    assert g["max_abs_diff_overall"] < 1e-4 and result["ok"] is True
    assert onnx_cross.summary_lines(result)[0].startswith("ok")


def test_cross_check_flags_a_column_that_learned_something_else(tmp_path):
    w, bias = least_squares()
    make_run(tmp_path, [("alpha", "ok", w, bias), ("beta", "ok", w * 0.5, bias)])
    result = onnx_cross.cross_check(tmp_path)
    (g,) = result["groups"]
    assert g["within_tolerance"] is False and result["ok"] is False
    assert g["max_abs_diff"][0][1] == g["max_abs_diff"][1][0] > 0.1
    assert onnx_cross.main([str(tmp_path)]) == 1
