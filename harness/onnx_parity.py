"""ONNX export parity: every trained model, exported by its framework's own route, run in onnxruntime.

`check()` is called inside the cell's process after training. It asks the implementation's
`export_onnx(model, path, example)` for a file, validates it with `onnx.checker`, runs it in
onnxruntime (CPU provider) on the test inputs, and compares with the framework's own `predict`:
max |Δ|, share of elements outside atol 1e-5 + rtol 1e-3, argmax agreement, at two batch sizes (to
prove the batch axis is dynamic). An exporter that fails is reported `unsupported` with its error.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from harness.measure import time_calls

ATOL, RTOL = 1e-5, 1e-3
BATCHES = (256, 37)  # the second, odd size proves the batch axis is dynamic


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:400]


def _feed(session, x: np.ndarray) -> dict:
    """Inputs in the layout the exported graph declares (NHWC and NCHW differ only by a unit axis
    for one channel, so a reshape moves no data)."""
    inp = session.get_inputs()[0]
    dims = inp.shape[1:]
    if all(isinstance(d, int) for d in dims) and int(np.prod(dims)) == int(np.prod(x.shape[1:])):
        x = x.reshape((len(x), *dims))
    return {inp.name: np.ascontiguousarray(x, dtype=np.float32)}


def compare(native: np.ndarray, ort: np.ndarray, classify: bool) -> dict:
    native = np.asarray(native, np.float64).reshape(len(native), -1)
    ort = np.asarray(ort, np.float64).reshape(len(ort), -1)
    diff = np.abs(native - ort)
    out = {"max_abs_diff": float(diff.max()),
           "mismatch_pct": float(100.0 * np.mean(diff > ATOL + RTOL * np.abs(native)))}
    if classify:
        out["argmax_agreement"] = float(np.mean(native.argmax(1) == ort.argmax(1)))
    return out


def check(module, model, spec, data, cell_dir: Path) -> dict:
    try:
        import onnx
        import onnxruntime as ort
    except ImportError as exc:
        return {"status": "unavailable", "error": _one_line(exc)}
    path = Path(cell_dir) / "model.onnx"
    x_test = data.x_test
    classify = spec.task.startswith("mnist")
    row: dict = {"status": None, "error": None}
    t0 = time.perf_counter()
    try:
        info = module.export_onnx(model, str(path), np.ascontiguousarray(x_test[:2])) or {}
        row["export_s"] = time.perf_counter() - t0
        row.update(info)
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
        row["opset"] = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=None)
        row["file_mb"] = path.stat().st_size / 2**20
        options = ort.SessionOptions()
        options.intra_op_num_threads = _threads()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - an exporter that cannot do this model
        row.update(status="unsupported", error=_one_line(exc), export_s=time.perf_counter() - t0)
        return row
    try:
        per_batch = {}
        for batch in BATCHES:
            x = np.resize(x_test, (batch, *x_test.shape[1:])) if len(x_test) < batch else x_test[:batch]
            got = session.run(None, _feed(session, x))[0]
            per_batch[batch] = compare(module.predict(model, x), got, classify)
        row["batches"] = {str(b): v for b, v in per_batch.items()}
        worst = max(per_batch.values(), key=lambda v: v["max_abs_diff"])
        row.update(worst)
        row["dynamic_batch"] = True
        # whole test set, for accuracy through onnxruntime
        full = session.run(None, _feed(session, x_test))[0]
        if classify:
            row["ort_test_accuracy"] = float((np.asarray(full).argmax(1) == data.y_test).mean())
        else:
            row["ort_test_mse"] = float(np.mean((np.asarray(full, np.float64).reshape(data.y_test.shape)
                                                 - data.y_test) ** 2))
        row["ort_infer_ms"] = {
            "batch_1": time_calls(lambda: session.run(None, _feed(session, x_test[:1])), repeats=50),
            "batch_256": time_calls(lambda: session.run(None, _feed(session, x_test[:256])), repeats=20)}
        row["status"] = "ok" if row["max_abs_diff"] <= 1e-4 and row.get("argmax_agreement", 1.0) == 1.0 \
            else "mismatch"
    except Exception as exc:  # noqa: BLE001 - e.g. a batch axis that was fixed at export
        row.update(status="failed", error=_one_line(exc), dynamic_batch=False)
    return row


def _threads() -> int:
    import os

    return int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
