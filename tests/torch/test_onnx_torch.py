"""The ONNX block of a real cell: a PyTorch smoke MLP through the runner, exported, checked, quantized."""
from conftest import assert_all_ok


def test_mnist_mlp_onnx_block_is_complete(run_cells):
    code, rows = run_cells("mnist_mlp", "pytorch", "--variants", "eager")
    assert_all_ok(rows, expected_count=1)
    row = rows[0]
    o = row["onnx"]
    assert o["status"] == "ok", o
    # the file: exporter, opset, size (weights in model.onnx.data count), a symbolic batch axis
    assert o["exporter"].startswith("torch.onnx.export") and o["opset"] >= 18
    assert 0.85 < o["file_mb"] < 1.0  # 235,146 float32 weights = 0.90 MiB
    assert o["batch_symbolic"] is True and o["inputs"][0]["shape"][1] == 784
    assert o["export_s"] > 0 and o["check_s"] >= o["export_s"]
    # parity at two batch sizes
    assert set(o["batches"]) == {"256", "37"} and o["dynamic_batch"] is True
    for b in o["batches"].values():
        assert b["max_abs_diff"] <= 1e-4 and b["argmax_agreement"] == 1.0 and b["mismatch_pct"] == 0.0
    assert abs(o["ort_test_accuracy"] - row["metrics"]["test_accuracy"]) <= 0.002  # a near-tie may flip
    # latency side by side: native and onnxruntime, batch 1 and 256
    for batch in ("batch_1", "batch_256"):
        assert o["ort_infer_ms"][batch]["median"] > 0
        assert o["native_infer_ms"][batch]["median"] > 0
    # dynamic int8 quantization: smaller, about as accurate, timed the same way
    q = o["quantized"]
    assert q["status"] == "ok", q
    assert q["quantized_ops"] == {"MatMulInteger": 3}
    assert q["file_mb"] < 0.35 * o["file_mb"]
    assert abs(q["accuracy_drop"]) < 2.0  # points
    assert q["eval_complete"] is True and q["fp32_test_accuracy"] == o["ort_test_accuracy"]
    assert q["accuracy_drop"] == (o["ort_test_accuracy"] - q["test_accuracy"]) * 100
    assert q["argmax_agreement_vs_fp32"] > 0.95
    for batch in ("batch_1", "batch_256"):
        assert q["ort_infer_ms"][batch]["median"] > 0 and q[f"speedup_{batch}"] > 0
