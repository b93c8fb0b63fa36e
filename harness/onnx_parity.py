"""ONNX export parity: every trained model, exported by its framework's own route, run in onnxruntime.

`check()` is called inside the cell's process after training. It asks the implementation's
`export_onnx(model, path, example)` for a file, validates it with `onnx.checker`, runs it in
onnxruntime (CPU provider) on the test inputs, and compares with the framework's own `predict`:
max |Δ|, share of elements outside atol 1e-5 + rtol 1e-3, argmax agreement, at two batch sizes (to
prove the batch axis is dynamic). Then onnxruntime's dynamic int8 quantization of the same file, with
its accuracy drop and latency. An exporter that fails is reported `unsupported` with its error and
the stage where it failed (export, checker, session, run), never hidden.

Statuses: ok (within MAX_ABS_DIFF and every argmax agrees, at both batch sizes) · mismatch (runs, but
differs) · failed (exported and loaded, but running it failed, e.g. a batch axis fixed at export) ·
unsupported (the exporter or onnxruntime cannot do this model) · unavailable (no onnx/onnxruntime in
this environment) · not_applicable (the implementation has no export_onnx).
"""
from __future__ import annotations

import logging
import os
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from harness.measure import time_calls

ATOL, RTOL = 1e-5, 1e-3  # an element "mismatches" outside atol + rtol * |native|
MAX_ABS_DIFF = 1e-4  # an ok export is within this of the framework's own output
BATCHES = (256, 37)  # the second, odd size proves the batch axis is dynamic
REPEATS = {"batch_1": 50, "batch_256": 20}  # latency: median of this many calls after 2 warm-ups
ONNX_FILE, INT8_FILE = "model.onnx", "model.int8.onnx"


def one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:400]


_one_line = one_line  # older name


def _feed(session, x: np.ndarray) -> dict:
    """Inputs in the layout the exported graph declares (NHWC and NCHW differ only by a unit axis
    for one channel, so a reshape moves no data)."""
    inp = session.get_inputs()[0]
    dims = inp.shape[1:]
    if all(isinstance(d, int) for d in dims) and int(np.prod(dims)) == int(np.prod(x.shape[1:])):
        x = x.reshape((len(x), *dims))
    return {inp.name: np.ascontiguousarray(x, dtype=np.float32)}


def compare(native: np.ndarray, ort: np.ndarray, classify: bool) -> dict:
    """max |Δ|, % of elements outside atol + rtol·|native|, and (classifiers) argmax agreement (0..1)."""
    native = np.asarray(native, np.float64).reshape(len(native), -1)
    ort = np.asarray(ort, np.float64).reshape(len(ort), -1)
    if native.shape != ort.shape:
        raise ValueError(f"output shapes differ: native {native.shape}, onnxruntime {ort.shape}")
    diff = np.abs(native - ort)
    out = {"max_abs_diff": float(diff.max()) if diff.size else 0.0,
           "mismatch_pct": float(100.0 * np.mean(diff > ATOL + RTOL * np.abs(native))) if diff.size else 0.0}
    if classify:
        out["argmax_agreement"] = float(np.mean(native.argmax(1) == ort.argmax(1)))
    return out


def parity_status(per_batch: dict) -> str:
    """ok when every batch size is within MAX_ABS_DIFF and every argmax agrees, else mismatch."""
    worst = max(v["max_abs_diff"] for v in per_batch.values())
    agree = min(v.get("argmax_agreement", 1.0) for v in per_batch.values())
    return "ok" if worst <= MAX_ABS_DIFF and agree == 1.0 else "mismatch"


def batch_of(x: np.ndarray, batch: int) -> np.ndarray:
    """The first `batch` rows (repeated if the test set is smaller)."""
    return x[:batch] if len(x) >= batch else np.resize(x, (batch, *x.shape[1:]))


# --------------------------------------------------------------------------------------------------
# the file itself
# --------------------------------------------------------------------------------------------------
def _dims(value_info) -> list:
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return []
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]


def file_mb(path: Path) -> float:
    """The model file plus the external-data files it references (the torch exporter writes its
    weights to model.onnx.data)."""
    import onnx
    from onnx.external_data_helper import uses_external_data

    path = Path(path)
    proto = onnx.load(str(path), load_external_data=False)
    files = {path}
    for tensor in proto.graph.initializer:
        if uses_external_data(tensor):
            location = next((e.value for e in tensor.external_data if e.key == "location"), None)
            if location:
                files.add(path.parent / location)
    return sum(f.stat().st_size for f in files if f.exists()) / 2**20


def describe(path: Path) -> dict:
    """Exporter-independent facts of an ONNX file: opset, size, inputs/outputs, op types, batch axis."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    initializers = {t.name for t in proto.graph.initializer}
    inputs = [{"name": i.name, "shape": _dims(i)} for i in proto.graph.input if i.name not in initializers]
    outputs = [{"name": o.name, "shape": _dims(o)} for o in proto.graph.output]
    first = inputs[0]["shape"][0] if inputs and inputs[0]["shape"] else None
    return {
        "opset": max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=None),
        "ir_version": proto.ir_version,
        "producer": " ".join(x for x in (proto.producer_name, proto.producer_version) if x) or None,
        "file_mb": file_mb(path),
        "inputs": inputs,
        "outputs": outputs,
        "batch_symbolic": not isinstance(first, int),  # a name (e.g. "batch") or unknown: not fixed
        "op_types": dict(sorted(Counter(n.op_type for n in proto.graph.node).items())),
        "nodes": len(proto.graph.node),
    }


def session_for(path: Path, threads: int | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = _threads() if threads is None else threads
    options.log_severity_level = 3  # errors only: the cell log is for tracebacks
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_all(session, x: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Outputs on a whole test set, in chunks (bounded memory at any size)."""
    return np.concatenate([np.asarray(session.run(None, _feed(session, x[i:i + chunk]))[0])
                           for i in range(0, len(x), chunk)])


def latency(session, x: np.ndarray) -> dict:
    return {"batch_1": time_calls(lambda: session.run(None, _feed(session, x[:1])), repeats=REPEATS["batch_1"]),
            "batch_256": time_calls(lambda: session.run(None, _feed(session, batch_of(x, 256))),
                                    repeats=REPEATS["batch_256"])}


def score(outputs: np.ndarray, y: np.ndarray, classify: bool) -> dict:
    if classify:
        return {"test_accuracy": float((np.asarray(outputs).reshape(len(y), -1).argmax(1) == y).mean())}
    return {"test_mse": float(np.mean((np.asarray(outputs, np.float64).reshape(y.shape) - y) ** 2))}


# --------------------------------------------------------------------------------------------------
# the check
# --------------------------------------------------------------------------------------------------
def check(module, model, spec, data, cell_dir: Path, native_infer_ms: dict | None = None) -> dict:
    try:
        import onnx
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        return {"status": "unavailable", "error": one_line(exc)}
    if not hasattr(module, "export_onnx"):
        return {"status": "not_applicable", "error": f"{module.__name__} defines no export_onnx"}
    cell_dir = Path(cell_dir)
    path = cell_dir / ONNX_FILE
    x_test = data.x_test
    classify = spec.task.startswith("mnist")
    row: dict = {"status": None, "error": None, "stage": None, "file": _relative(path)}
    stage, t0 = "export", time.perf_counter()
    try:
        info = module.export_onnx(model, str(path), np.ascontiguousarray(x_test[:2])) or {}
        row["export_s"] = time.perf_counter() - t0
        row.update(info)
        stage = "checker"
        onnx.checker.check_model(str(path))  # by path: external data files are checked too
        row.update(describe(path))
        stage = "session"
        session = session_for(path)
    except Exception as exc:  # noqa: BLE001 - an exporter (or onnxruntime) that cannot do this model
        row.setdefault("export_s", time.perf_counter() - t0)
        row.update(status="unsupported", error=one_line(exc), stage=stage)
        if path.exists() and "file_mb" not in row:
            try:
                row.update(describe(path))
            except Exception:  # noqa: BLE001 - a file the checker already rejected
                pass
        return row
    try:
        stage = "run"
        per_batch = {}
        for batch in BATCHES:
            x = batch_of(x_test, batch)
            per_batch[batch] = compare(module.predict(model, x), session.run(None, _feed(session, x))[0], classify)
        row["batches"] = {str(b): v for b, v in per_batch.items()}
        row.update(max(per_batch.values(), key=lambda v: v["max_abs_diff"]))
        row["dynamic_batch"] = True
        full = run_all(session, x_test)
        row.update({f"ort_{k}": v for k, v in score(full, data.y_test, classify).items()})
        row["ort_infer_ms"] = latency(session, x_test)
        row["native_infer_ms"] = native_infer_ms
        row["status"], row["stage"] = parity_status(per_batch), None
    except Exception as exc:  # noqa: BLE001 - e.g. a batch axis that was fixed at export
        row.update(status="failed", error=one_line(exc), stage=stage, dynamic_batch=False)
        return row
    row["quantized"] = quantize(path, cell_dir / INT8_FILE, data, classify, fp32=full,
                                fp32_score=row.get("ort_test_accuracy", row.get("ort_test_mse")),
                                fp32_ms=row["ort_infer_ms"])
    return row


def quantize(path: Path, out: Path, data, classify: bool, fp32: np.ndarray, fp32_score: float,
             fp32_ms: dict) -> dict:
    """onnxruntime's dynamic int8 quantization (weights int8 ahead of time, activations quantized on
    the fly): size, accuracy drop and latency against the fp32 file in the same runtime."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    q: dict = {"status": None, "error": None, "method": "quantize_dynamic", "weight_type": "QInt8"}
    t0 = time.perf_counter()
    try:
        import onnx

        proto = onnx.load(str(path))
        # The exporters record shapes of initializers in value_info; quantize_dynamic rewrites Gemm
        # (transB=1) as MatMul with a transposed weight and then fails on the stale shape
        # ("Inferred shape and existing shape differ", microsoft/onnxruntime#25890). Shapes are
        # re-inferred from the graph, so dropping the recorded ones loses nothing.
        del proto.graph.value_info[:]
        with _quiet():
            quantize_dynamic(proto, str(out), weight_type=QuantType.QInt8)
        q["quantize_s"] = time.perf_counter() - t0
        facts = describe(out)
        q["file_mb"] = facts["file_mb"]
        q["quantized_ops"] = {k: v for k, v in facts["op_types"].items() if k.endswith("Integer")}
        session = session_for(out)
        got = run_all(session, data.x_test)
        q.update(score(got, data.y_test, classify))
        diff = compare(fp32, got, classify)
        q["max_abs_diff_vs_fp32"] = diff["max_abs_diff"]
        if classify:
            q["argmax_agreement_vs_fp32"] = diff["argmax_agreement"]
            q["accuracy_drop"] = 100.0 * (fp32_score - q["test_accuracy"])  # points
        else:
            q["mse_increase_pct"] = 100.0 * (q["test_mse"] / fp32_score - 1.0) if fp32_score else None
        q["ort_infer_ms"] = latency(session, data.x_test)
        for batch in ("batch_1", "batch_256"):
            a, b = fp32_ms[batch]["median"], q["ort_infer_ms"][batch]["median"]
            q[f"speedup_{batch}"] = a / b if a and b else None
        q["status"] = "ok"
    except Exception as exc:  # noqa: BLE001 - recorded; the fp32 parity stands on its own
        q.update(status="failed", error=one_line(exc), quantize_s=time.perf_counter() - t0)
    return q


@contextmanager
def _quiet():
    """quantize_dynamic logs a pre-processing advice through the root logger on every call."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _relative(path: Path) -> str:
    """cells/<slug>/model.onnx: the file's place in the run dir."""
    path = Path(path)
    return "/".join(path.parts[-3:]) if len(path.parts) >= 3 else str(path)


def _threads() -> int:
    return int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
