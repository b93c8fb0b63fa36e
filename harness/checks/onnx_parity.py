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
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from harness.measuring.measure import summarize

ATOL, RTOL = 1e-5, 1e-3  # an element "mismatches" outside atol + rtol * |native|
MAX_ABS_DIFF = 1e-4  # an ok export is within this of the framework's own output
BATCHES = (256, 37)  # the second, odd size proves the batch axis is dynamic
# latency: median of up to REPEATS calls after a warm-up call, fewer (never under MIN_REPEATS) once the
# batch size has used its time budget: a slow int8 conv model must not cost the cell half a minute
REPEATS = {"batch_1": 50, "batch_256": 20}
MIN_REPEATS = 5
LATENCY_BUDGET_S = {"batch_1": 0.5, "batch_256": 2.0}
# int8 accuracy: the whole test set, in chunks, until this budget is spent (never under QUANT_MIN_ROWS)
QUANT_EVAL_BUDGET_S, QUANT_MIN_ROWS = 5.0, 2000
ONNX_FILE, INT8_FILE = "model.onnx", "model.int8.onnx"


def one_line(exc: BaseException) -> str:
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


def run_all(session, x: np.ndarray, chunk: int = 2048, budget_s: float | None = None,
            min_rows: int = 0) -> np.ndarray:
    """Outputs on a whole test set, in chunks (bounded memory at any size); with a budget, the first
    rows only once the budget is spent and at least `min_rows` are done."""
    out, start = [], time.perf_counter()
    for i in range(0, len(x), chunk):
        if budget_s is not None and i >= min_rows and time.perf_counter() - start > budget_s:
            break
        out.append(np.asarray(session.run(None, _feed(session, x[i:i + chunk]))[0]))
    return np.concatenate(out)


def latency(sessions: dict, x: np.ndarray) -> dict:
    """{name: {batch_1, batch_256}} median/IQR ms. Several sessions are timed call by call in turn,
    so that a busy machine slows each of them alike and their ratio stays fair."""
    out: dict = {name: {} for name in sessions}
    for batch, repeats in REPEATS.items():
        feeds = {name: _feed(s, batch_of(x, int(batch.split("_")[1]))) for name, s in sessions.items()}
        times: dict = {name: [] for name in sessions}
        start = time.perf_counter()
        for i in range(repeats + 1):  # one warm-up round: both sessions have already run
            for name, s in sessions.items():
                t0 = time.perf_counter()
                s.run(None, feeds[name])
                if i >= 1:
                    times[name].append((time.perf_counter() - t0) * 1000.0)
            if i >= MIN_REPEATS and time.perf_counter() - start > LATENCY_BUDGET_S[batch]:
                break
        for name in sessions:
            out[name][batch] = summarize(times[name])
    return out


def score(outputs: np.ndarray, y: np.ndarray, classify: bool) -> dict:
    if classify:
        return {"test_accuracy": float((np.asarray(outputs).reshape(len(y), -1).argmax(1) == y).mean())}
    return {"test_mse": float(np.mean((np.asarray(outputs, np.float64).reshape(y.shape) - y) ** 2))}


# --------------------------------------------------------------------------------------------------
# the check
# --------------------------------------------------------------------------------------------------
def check(module, model, spec, data, cell_dir: Path, native_infer_ms: dict | None = None) -> dict:
    if not hasattr(module, "export_onnx"):
        return {"status": "not_applicable", "error": f"{module.__name__} defines no export_onnx"}
    try:
        import onnx
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        return {"status": "unavailable", "error": one_line(exc)}
    cell_dir = Path(cell_dir)
    path = cell_dir / ONNX_FILE
    x_test = data.x_test
    classify = spec.task.startswith("mnist")
    row: dict = {"status": None, "error": None, "stage": None, "file": _relative(path)}
    if note := _jax_export_cache():
        row["export_cache"] = note
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
        row["check_s"] = time.perf_counter() - t0
        return row
    per_batch: dict = {}
    try:
        for batch in BATCHES:
            stage = f"run at batch {batch}"
            x = batch_of(x_test, batch)
            got = session.run(None, _feed(session, x))[0]
            stage = f"compare at batch {batch}"  # the framework's own predict, and the comparison
            per_batch[batch] = compare(module.predict(model, x), got, classify)
        row["batches"] = {str(b): v for b, v in per_batch.items()}
        row.update(max(per_batch.values(), key=lambda v: v["max_abs_diff"]))
        row["dynamic_batch"] = True
        stage = "run on the test set"
        full = run_all(session, x_test)
        row.update({f"ort_{k}": v for k, v in score(full, data.y_test, classify).items()})
        row["status"], row["stage"] = parity_status(per_batch), None
    except Exception as exc:  # noqa: BLE001
        # onnxruntime loads the file but cannot run it at all (a kernel it rejects): unsupported;
        # it ran at the first batch size but not the second: the batch axis is fixed, a failed export;
        # predict or the comparison raised (e.g. output shapes differ): failed
        rejected = stage == f"run at batch {BATCHES[0]}"
        row.update(status="unsupported" if rejected else "failed", error=one_line(exc), stage=stage,
                   dynamic_batch=False if stage == f"run at batch {BATCHES[1]}" else None)
        row["batches"] = {str(b): v for b, v in per_batch.items()}
        row["check_s"] = time.perf_counter() - t0
        return row
    q, q_session = quantize(path, cell_dir / INT8_FILE, data, classify, fp32=full)
    sessions = {"fp32": session, "int8": q_session} if q_session is not None else {"fp32": session}
    t1 = time.perf_counter()
    ms = latency(sessions, x_test)
    row["latency_s"] = time.perf_counter() - t1  # fp32 and int8 timed together
    row["ort_infer_ms"], row["native_infer_ms"] = ms["fp32"], native_infer_ms
    if "int8" in ms:
        q["ort_infer_ms"] = ms["int8"]
        for batch in REPEATS:
            a, b = ms["fp32"][batch]["median"], ms["int8"][batch]["median"]
            q[f"speedup_{batch}"] = a / b if a and b else None
    row["quantized"] = q
    row["check_s"] = time.perf_counter() - t0  # what the whole ONNX block cost this cell
    return row


def quantize(path: Path, out: Path, data, classify: bool, fp32: np.ndarray):
    """onnxruntime's dynamic int8 quantization (weights int8 ahead of time, activations quantized on
    the fly): size and accuracy drop against the fp32 file in the same runtime. Returns the record and
    the int8 session (None if it failed), which `check` times side by side with the fp32 one."""
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
        # Dynamic quantization has integer kernels for MatMul and Conv, not Gemm, and converts only
        # Gemm with alpha = beta = 1; jax2onnx writes x @ W as Gemm(beta=0) + Add. Every exporter's
        # dense layer becomes MatMul (+ Add) here, so that each is quantized alike.
        q["gemm_to_matmul"] = gemm_to_matmul(proto)
        with _quiet():
            quantize_dynamic(proto, str(out), weight_type=QuantType.QInt8)
        q["quantize_s"] = time.perf_counter() - t0
        facts = describe(out)
        q["file_mb"] = facts["file_mb"]
        q["quantized_ops"] = {k: v for k, v in facts["op_types"].items() if k.endswith("Integer")}
        if not q["quantized_ops"]:
            raise ValueError("quantize_dynamic quantized no operator of "
                             + ", ".join(f"{k}×{v}" for k, v in describe(path)["op_types"].items()))
        session = session_for(out)
        t1 = time.perf_counter()
        got = run_all(session, data.x_test, chunk=500, budget_s=QUANT_EVAL_BUDGET_S, min_rows=QUANT_MIN_ROWS)
        q["eval_s"] = time.perf_counter() - t1
        n = len(got)  # the whole test set unless the budget ran out: then both scores on these rows
        q["eval_rows"], q["eval_complete"] = n, n == len(data.y_test)
        fp32_n = score(fp32[:n], data.y_test[:n], classify)
        q.update({f"fp32_{k}": v for k, v in fp32_n.items()})
        q.update(score(got, data.y_test[:n], classify))
        diff = compare(fp32[:n], got, classify)
        q["max_abs_diff_vs_fp32"] = diff["max_abs_diff"]
        if classify:
            q["argmax_agreement_vs_fp32"] = diff["argmax_agreement"]
            q["accuracy_drop"] = 100.0 * (q["fp32_test_accuracy"] - q["test_accuracy"])  # points
        else:
            q["mse_increase_pct"] = (100.0 * (q["test_mse"] / q["fp32_test_mse"] - 1.0)
                                     if q["fp32_test_mse"] else None)
        q["status"] = "ok"
        return q, session
    except Exception as exc:  # noqa: BLE001 - recorded; the fp32 parity stands on its own
        q.update(status="failed", error=one_line(exc), quantize_s=time.perf_counter() - t0)
        return q, None


def _jax_export_cache() -> str | None:
    """jax2onnx (also behind Keras's export on JAX) imports all of its ~1,500 plugin modules on its
    first conversion in a process, and some build equinox example modules at import: ~75 small XLA
    compiles, 5-30 s per cell on 2 busy cores. JAX's persistent compilation cache, in the run dir
    and switched on only here, after every timed phase of the cell, lets the run's first JAX cell
    pay for them once. Training in later cells never reads it (their processes start without it)."""
    jax = sys.modules.get("jax")
    cache_home = os.environ.get("XDG_CACHE_HOME")  # the runner puts it under the run dir
    if jax is None or not cache_home:
        return None
    try:
        from jax.experimental.compilation_cache import compilation_cache

        jax.config.update("jax_compilation_cache_dir", str(Path(cache_home) / "jax-onnx-export"))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
        compilation_cache.reset_cache()  # the "no cache" answer is memoised at the first compile
    except Exception:  # noqa: BLE001 - an older or newer jax: export without the cache
        return None
    return "jax persistent compilation cache (run dir), from the export on"


def gemm_to_matmul(proto) -> int:
    """Rewrite Gemm(A, B, C) with a constant B, alpha = 1, transA = 0 and beta 0 or 1 as MatMul(A, B)
    (+ C): the same arithmetic, in the op that dynamic quantization has an integer kernel for.
    Returns how many nodes were rewritten. The graph is changed in place."""
    from onnx import helper, numpy_helper

    graph = proto.graph
    inits = {t.name: t for t in graph.initializer}
    uses = Counter(i for n in graph.node for i in n.input)
    graph_inputs = {i.name for i in graph.input}
    nodes, count = [], 0
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        b_name = node.input[1] if node.op_type == "Gemm" and len(node.input) > 1 else None
        ok = (b_name in inits and attrs.get("alpha", 1.0) == 1.0 and not attrs.get("transA", 0)
              and attrs.get("beta", 1.0) in (0.0, 1.0))
        if not ok:
            nodes.append(node)
            continue
        if attrs.get("transB", 0):  # store B as [in, out], dropping the original if nothing else reads it
            weight = numpy_helper.to_array(inits[b_name]).T
            tensor = numpy_helper.from_array(np.ascontiguousarray(weight), f"{b_name}_t{count}")
            if uses[b_name] == 1 and b_name not in graph_inputs:
                graph.initializer.remove(inits[b_name])
            graph.initializer.append(tensor)
            b_name = tensor.name
        has_c = len(node.input) > 2 and node.input[2] and attrs.get("beta", 1.0) == 1.0
        out = node.output[0]
        mm_out = f"{out}_matmul" if has_c else out
        nodes.append(helper.make_node("MatMul", [node.input[0], b_name], [mm_out], name=f"{node.name}_matmul"))
        if has_c:
            nodes.append(helper.make_node("Add", [mm_out, node.input[2]], [out], name=f"{node.name}_bias"))
        count += 1
    if count:
        del graph.node[:]
        graph.node.extend(nodes)
    return count


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
