"""One cell, in its own process: ``python -m harness.running.cell JOB.json``.

Imports the implementation (and with it the framework), loads the data, builds, trains, evaluates,
times inference, round-trips the saved model and checks the ONNX export, then writes one JSON result
next to the job. The parent (`harness.running.runner`) adds what only it can see: exit status, peak RSS from
``os.wait4``, timeouts.
"""
from __future__ import annotations

import importlib
import json
import math
import os
import resource
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from harness.matrix import data as data_mod
from harness.matrix.registry import FRAMEWORKS, module_name
from harness.matrix.tasks import TASKS, spec_from_dict
from harness.measuring import stability
from harness.measuring.measure import Diverged, Recorder, TargetReached, softmax_cross_entropy, time_calls

PARITY_ROWS = 32  # rows of x_train whose initial outputs `dlrosetta parity` compares
# After training, a run has diverged (status `diverged`, see also measure.DIVERGENCE_FACTOR) when its last
# epoch's loss ends ENDS_ABOVE_FACTOR times above its start scale, or a classifier's test accuracy is
# within CHANCE_FACTOR of a uniform guess (1/C): a 10-class model at <= 15 % has learnt nothing.
ENDS_ABOVE_FACTOR = 10.0
CHANCE_FACTOR = 1.5


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:400]


def set_threads(framework: str, threads: int) -> dict:
    """Same thread count for every framework (env vars are set by the runner; these are the APIs)."""
    fw = FRAMEWORKS[framework]
    # the runner pinned this process to `threads` cores (every framework's pool respects affinity)
    settings = {"threads": threads, "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                else None}
    if "torch" in fw.requires or fw.keras_backend == "torch":
        import torch

        torch.set_num_threads(threads)
        settings["torch_num_threads"] = torch.get_num_threads()
    if "tensorflow" in fw.requires:
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # already initialised: the env vars have done it
            pass
        settings["tf_intra_op"] = tf.config.threading.get_intra_op_parallelism_threads()
    return settings


def sync_device(framework: str, device: str) -> None:
    if device == "gpu" and ("torch" in FRAMEWORKS[framework].requires):
        import torch

        torch.cuda.synchronize()


def device_peak_mb(framework: str, device: str) -> float | None:
    """Device memory from the framework's own counters (GPU only)."""
    if device != "gpu":
        return None
    fw = FRAMEWORKS[framework]
    try:
        if "torch" in fw.requires:
            import torch

            return torch.cuda.max_memory_allocated() / 2**20
        if "jax" in fw.requires or fw.keras_backend == "jax":
            import jax

            stats = jax.devices()[0].memory_stats() or {}
            return stats.get("peak_bytes_in_use", 0) / 2**20 or None
        if "tensorflow" in fw.requires:
            import tensorflow as tf

            return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    except Exception:  # noqa: BLE001 - a missing counter is not a failed cell
        return None
    return None


def evaluate_mnist(module, model, data) -> dict:
    logits = np.asarray(module.predict(model, data.x_test), dtype=np.float32)
    return {"test_accuracy": float((logits.argmax(axis=1) == data.y_test).mean()),
            "test_loss": softmax_cross_entropy(logits, data.y_test)}


def mse(pred, y) -> float:
    return float(np.mean((np.asarray(pred, dtype=np.float64).reshape(y.shape) - y.astype(np.float64)) ** 2))


def linreg_params(module, model, data) -> tuple[np.ndarray, np.ndarray]:
    """A and b of the learned model, read through `predict` alone: b = f(0), A = f(I) - b."""
    d = data.x_train.shape[1]
    b = np.asarray(module.predict(model, np.zeros((1, d), np.float32)), dtype=np.float64).reshape(-1)
    a = np.asarray(module.predict(model, np.eye(d, dtype=np.float32)), dtype=np.float64).reshape(d, -1) - b
    return a[:, 0], b


def run(job: dict) -> dict:
    t_process = job.get("t_spawn", time.time())
    framework, device = job["framework"], job["device"]
    spec = spec_from_dict(job["spec"])
    kind = TASKS[spec.task].kind
    cell_dir = Path(job["cell_dir"])
    result: dict = {"metrics": {}, "timing": {}, "memory": {}, "onnx": None}
    timing, metrics = result["timing"], result["metrics"]

    # -- import (the framework comes with the implementation module) ------------------------------
    rss_before = maxrss_mb()
    t0 = time.perf_counter()
    module = importlib.import_module(module_name(spec.task, framework))
    timing["import_s"] = time.perf_counter() - t0
    result["memory"]["import_rss_mb"] = maxrss_mb()
    result["memory"]["baseline_rss_mb"] = rss_before
    result["threads"] = set_threads(framework, job["threads"])

    # -- data (same arrays, same batch order for every framework) ---------------------------------
    t0 = time.perf_counter()
    data = data_mod.load(spec, job.get("data_dir"))
    timing["data_s"] = time.perf_counter() - t0

    evaluate = (lambda model: evaluate_mnist(module, model, data)) if kind == "mnist" else None
    if spec.task == "tanh_regression":  # its test loss after every epoch (timed apart, as MNIST's)
        evaluate = lambda model: {"test_loss": mse(module.predict(model, data.x_test), data.y_test)}  # noqa: E731
    epochs = getattr(spec, "epochs", None)
    marks = {}  # stability snapshots at the start and end of the timed phase
    profiler = ops_profiler(job, framework, epochs, data, cell_dir)
    rec = Recorder(kind, epochs=epochs, steps_per_epoch=data.steps_per_epoch if data else None,
                   evaluate=evaluate, target=getattr(spec, "target_accuracy", None),
                   progress_path=str(cell_dir / "progress.json"),
                   stop_at_target=getattr(spec, "stop_at_target", False), loss_scale=loss_scale(kind, spec, data),
                   on_start=lambda: marks.__setitem__("start", stability.snapshot()), on_step=profiler)
    probe_before = stability.probe()  # the machine's speed on either side of the timed phase

    def end_timed_phase() -> None:
        marks["end"] = stability.snapshot()
        measured = stability.window(marks["start"], marks["end"]) if "start" in marks else {}
        result["stability"] = stability.judge(measured, rec.steady_steps(), kind)
        result["stability"]["probe_gflops"] = [probe_before, stability.probe()]
        result["threads"]["cpu_per_wall"] = measured.get("cpu_per_wall")
        timing.update(rec.timing())
        (cell_dir / "steps.json").write_text(json.dumps(rec.steps_record()))
        if profiler is not None:
            try:
                result["ops_profile"] = profiler.result(cell_dir)
            except Exception as exc:  # noqa: BLE001 - recorded, the cell goes on
                result["ops_profile"] = {"status": "failed", "error": one_line(exc)}

    # -- x²: no model, no data; `train` returns the trajectory x_0..x_N --------------------------
    if kind == "x2":
        rec.start()
        try:
            trajectory = [float(x) for x in module.train(spec, rec)]
        except Diverged as exc:
            end_timed_phase()
            return diverged(result, exc.info)
        end_timed_phase()
        exact = spec.exact_trajectory()
        metrics.update(x_final=trajectory[-1], trajectory=trajectory, exact_final=exact[-1],
                       max_rel_error=max(abs(a - b) / abs(b) for a, b in zip(trajectory, exact)))
        if abs(trajectory[-1]) > abs(spec.x0):
            return diverged(result, {"reason": f"x moved away from the minimum: |x| {abs(trajectory[-1]):.4g} "
                                               f"> x0 {abs(spec.x0):g}", "step": len(trajectory) - 1,
                                     "loss": trajectory[-1], "first_loss": spec.x0})
        return result

    # -- build, train ------------------------------------------------------------------------------
    t0 = time.perf_counter()
    model = module.build_model(spec)
    timing["build_s"] = time.perf_counter() - t0
    if hasattr(module, "count_params"):
        metrics["param_count"] = int(module.count_params(model))
        metrics["param_count_expected"] = getattr(spec, "param_count", None)
    if hasattr(spec, "train_flops_per_step"):  # the report turns step times into GFLOP/s and % of roofline
        metrics["train_flops_per_step"] = spec.train_flops_per_step
    if job.get("parity"):  # `dlrosetta parity`: the untrained model's logits on a fixed batch
        metrics["initial_outputs"] = np.asarray(module.predict(model, data.x_train[:PARITY_ROWS]),
                                                np.float64).tolist()
    rec.start()
    t0 = time.perf_counter()
    try:
        model = module.train(model, spec, data, rec)
    except TargetReached as stop:  # a hand-written loop ended at the target (stop_at_target)
        model = stop.model
    except Diverged as exc:  # training stopped at the step where the loss exploded
        end_timed_phase()
        return diverged(result, exc.info)
    sync_device(framework, device)
    train_wall_s = time.perf_counter() - t0  # train() whole: its per-epoch evaluations included
    end_timed_phase()
    timing["train_wall_s"] = train_wall_s

    if job.get("parity"):  # per-step losses (Keras's running means turned back into per-step values)
        metrics["step_losses"] = rec.step_losses()
        metrics["step_losses_from_running_mean"] = rec.running_mean_losses
    # -- the dtypes it trained in (--precision): a bf16 cell that ran in float32 stops here ------------
    if kind == "mnist":
        from harness.checks import precision

        t0 = time.perf_counter()
        result["precision"] = precision.check(module, model, spec, data.x_train[:8])
        timing["checks_s"] = time.perf_counter() - t0
    # -- evaluate ------------------------------------------------------------------------------------
    if kind == "mnist":
        if not rec.evals:  # an implementation that did not evaluate per epoch
            rec.evals.append(evaluate(model))
        final = rec.evals[-1]
        metrics.update(test_accuracy=final["test_accuracy"], test_loss=final["test_loss"],
                       train_loss_curve=rec.epoch_losses,
                       test_accuracy_curve=[e["test_accuracy"] for e in rec.evals],
                       test_loss_curve=[e["test_loss"] for e in rec.evals],
                       target_accuracy=spec.target_accuracy, time_to_target_s=rec.time_to_target,
                       reached_target=(None if spec.target_accuracy is None
                                       else final["test_accuracy"] >= spec.target_accuracy),
                       epochs_trained=len(rec.epoch_times), stopped_at_target=rec.stopped_at_target)
        t0 = time.perf_counter()
        evaluate(model)
        timing["eval_s"] = time.perf_counter() - t0
        metrics["first_loss"] = next((v for v in rec.losses if v is not None), None)
        chance = 1.0 / spec.num_classes
        if final["test_accuracy"] <= CHANCE_FACTOR * chance:
            return diverged(result, {"reason": f"test accuracy {final['test_accuracy']:.1%} is at chance level "
                                               f"({chance:.0%})", "epoch": len(rec.epoch_times),
                                     "loss": final["test_loss"], "first_loss": metrics["first_loss"]})
    else:
        t0 = time.perf_counter()
        test_mse = mse(module.predict(model, data.x_test), data.y_test)
        timing["eval_s"] = time.perf_counter() - t0
        reference = data_mod.closed_form(data)
        a, b = linreg_params(module, model, data)
        metrics.update(train_mse=mse(module.predict(model, data.x_train), data.y_train), test_mse=test_mse,
                       closed_form_test_mse=reference["test_mse"],
                       gap_to_closed_form=test_mse / reference["test_mse"] - 1.0,
                       loss_curve=rec.epoch_losses, first_loss=rec.losses[0] if rec.losses else None,
                       A=a.tolist(), b=b.tolist())
        if rec.evals:  # tanh regression: a nonlinear model, so no A and b, and a test loss per epoch
            del metrics["A"], metrics["b"]
            metrics["test_loss_curve"] = [e["test_loss"] for e in rec.evals]
        if "true_A" in data.info:  # back to the raw feature scale: A_raw = A / sigma, b_raw = b - mu . A_raw
            sigma, mu = np.asarray(data.info["sigma"]), np.asarray(data.info["mu"])
            a_raw = a / sigma
            b_raw = b - mu @ a_raw
            err = np.concatenate([a_raw - np.asarray(data.info["true_A"]), b_raw - np.asarray(data.info["true_b"])])
            metrics["param_error"] = float(np.max(np.abs(err)))

    if ended := ended_above(rec, rec.loss_scale):
        return diverged(result, ended)

    # -- the checks: inference latency, save/load, ONNX, deploy (timed together: checks_s) -----------
    t_checks = time.perf_counter()
    # inference latency (native), batch 1 and 256
    x = data.x_test
    batch_256 = x[:256] if len(x) >= 256 else np.resize(x, (256, *x.shape[1:]))
    timing["infer_ms"] = {"batch_1": time_calls(lambda: module.predict(model, x[:1]), repeats=50),
                          "batch_256": time_calls(lambda: module.predict(model, batch_256), repeats=20)}

    # -- save / load round trip in the framework's native format ----------------------------------
    if hasattr(module, "save") and hasattr(module, "load") and not job.get("timing_only"):
        try:
            path = cell_dir / "saved"
            t0 = time.perf_counter()
            module.save(model, str(path))
            reloaded = module.load(spec, str(path))
            diff = np.max(np.abs(np.asarray(module.predict(reloaded, x[:256]), np.float64)
                                 - np.asarray(module.predict(model, x[:256]), np.float64)))
            metrics["save_load"] = {"status": "ok", "max_abs_diff": float(diff), "seconds": time.perf_counter() - t0}
        except Exception as exc:  # noqa: BLE001 - recorded, the cell goes on
            metrics["save_load"] = {"status": "failed", "error": one_line(exc)}

    # -- ONNX export and parity with onnxruntime ----------------------------------------------------
    # the exports are checked on the fp32 model; a bf16 graph would be another check
    reduced = None if getattr(spec, "precision", "fp32") == "fp32" else {
        "status": "not_applicable", "error": f"checked on the fp32 model, not {spec.precision}"}
    if job.get("onnx", True):  # a file without export_onnx gets a not_applicable block, never none
        from harness.checks import onnx_parity

        result["onnx"] = reduced or onnx_parity.check(module, model, spec, data, cell_dir,
                                                      native_infer_ms=timing["infer_ms"])

    # -- deployment export (torch.export, SavedModel, jax.export) loaded back ------------------------
    if job.get("deploy", True) and kind == "mnist":
        from harness.checks import deploy_export

        result["deploy"] = dict(reduced) if reduced else deploy_export.check(module, model, spec, data, cell_dir)
    timing["checks_s"] = timing.get("checks_s", 0.0) + time.perf_counter() - t_checks
    result["memory"]["device_peak_mb"] = device_peak_mb(framework, device)
    result["timing"]["process_start_s"] = time.time() - t_process
    return result


def ops_profiler(job: dict, framework: str, epochs, data, cell_dir: Path):
    """`--profile-ops`: the framework's profiler around a few steady-state steps (not in timing-only repeats)."""
    from harness.measuring import profile_ops

    family = profile_ops.family_of(framework)
    if not job.get("profile_ops") or job.get("timing_only") or family is None or data is None:
        return None
    total = epochs * data.steps_per_epoch if epochs else None
    return profile_ops.OpsProfiler(family, cell_dir / "ops_trace", total, job["device"])


def loss_scale(kind: str, spec, data) -> float | None:
    """The task's natural loss scale, the reference for divergence: a uniform guess's cross-entropy
    (log C), the zero model's MSE (linear regression starts from zero weights), x²'s start x0."""
    if kind == "mnist":
        return math.log(spec.num_classes)
    if kind == "linreg":
        return float(np.mean(np.asarray(data.y_train, np.float64) ** 2))
    return abs(spec.x0)


def ended_above(rec: Recorder, scale: float | None) -> dict | None:
    """Divergence info when the last epoch's loss ends ENDS_ABOVE_FACTOR above the start, else None."""
    curve = [v for v in rec.epoch_losses if v is not None]
    first = next((v for v in rec.losses if v is not None), None)
    if not curve or first is None:
        return None
    reference = max(abs(first), scale or 0.0)
    if curve[-1] > ENDS_ABOVE_FACTOR * reference:
        return {"reason": f"the loss ended at {curve[-1]:.4g}, over {ENDS_ABOVE_FACTOR:g}x its start scale "
                          f"{reference:.4g}", "epoch": len(curve), "loss": curve[-1], "first_loss": first}
    return None


def diverged(result: dict, info: dict) -> dict:
    """The result of a cell whose training diverged: status `diverged`, where and why."""
    info = {"reason": info.get("reason"), "step": info.get("step"), "epoch": info.get("epoch"),
            "loss": info.get("loss"), "first_loss": info.get("first_loss")}
    where = ", ".join(f"{k} {info[k]}" for k in ("step", "epoch") if info.get(k) is not None)
    result["status"] = "diverged"
    result["error"] = f"diverged: {info['reason']}" + (f" ({where})" if where else "")
    result["divergence"] = info
    return result


def main(argv=None) -> int:
    job_path = Path((argv or sys.argv[1:])[0])
    job = json.loads(job_path.read_text())
    out = Path(job["result_path"])
    t0 = time.perf_counter()
    try:
        result = run(job)
        result.setdefault("status", "ok")
        result.setdefault("error", None)
        code = 0
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a row
        traceback.print_exc()
        result = {"status": "failed", "error": one_line(exc)}
        code = 1
    result.setdefault("timing", {})["wall_s"] = time.perf_counter() - t0
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, default=_json_default))
    os.replace(tmp, out)
    sys.stdout.flush()
    sys.stderr.flush()
    return code


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


if __name__ == "__main__":
    # os._exit, not sys.exit: the row is written and the output flushed, and what the interpreter would do
    # next is the frameworks' teardown (atexit hooks, freeing every tensor, thread pools joined): 0.2-1 s a
    # process that is neither the framework's measured work nor anything a result needs (measured: the
    # harness's share of a bench's cell wall time, reports/overhead.py)
    os._exit(main())
