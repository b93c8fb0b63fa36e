"""The recorder an implementation calls at step and epoch boundaries, and the timing statistics.

Implementations make one call per step (``rec.step(loss)``) and one per epoch (``rec.epoch(model)``),
or hand a ready-made callback to a fit-style API (``rec.keras_callback()``,
``rec.lightning_callback()``). Reading the loss as a Python float is the device sync: it waits for
the step's computation in every framework (torch ``.item()``, JAX ``float()`` blocks until ready,
TF ``.numpy()``), so every timestamp here is taken after the work it measures.
"""
from __future__ import annotations

import json
import math
import os
import time

import numpy as np


# A run has diverged when a step's loss is not finite, or exceeds DIVERGENCE_FACTOR times its reference
# scale: the larger of the first step's loss and the task's natural scale (for a classifier the loss of a
# uniform guess, log C; for regression from zero weights the zero model's MSE; for x² the start x0).
# Legitimate runs stay within a few times their first loss (single-sample SGD losses on California
# reach ~50x the mean); an exploding one passes 1e3x within a few steps (lr=1e6: 1e18 at step 2).
DIVERGENCE_FACTOR = 1e3


class Diverged(RuntimeError):
    """Training diverged: the loss became NaN or infinite, or grew far beyond its reference scale.
    Raised by `Recorder.step`, so training stops at that step; the cell records status `diverged`."""

    def __init__(self, reason: str, step: int | None = None, epoch: int | None = None, loss=None,
                 first_loss=None):
        super().__init__(f"diverged: {reason}" + (f" at step {step}" if step else ""))
        self.info = {"reason": reason, "step": step, "epoch": epoch, "loss": loss, "first_loss": first_loss}


class TargetReached(Exception):
    """Raised by `Recorder.epoch` to end a hand-written training loop once the test accuracy reaches
    the target (specs with `stop_at_target`); the harness catches it and goes on with `model`, the
    one just evaluated. Fit-style APIs are stopped their own way (`stop_training`, `should_stop`)."""

    def __init__(self, model):
        super().__init__("target accuracy reached")
        self.model = model


def summarize(values) -> dict:
    """Median, inter-quartile range and count of a list of durations (seconds)."""
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if arr.size == 0:
        return {"median": None, "iqr": None, "n": 0}
    q1, med, q3 = np.percentile(arr, [25, 50, 75])
    return {"median": float(med), "iqr": float(q3 - q1), "n": int(arr.size)}


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


class Recorder:
    def __init__(self, task_kind: str, epochs: int | None = None, steps_per_epoch: int | None = None,
                 evaluate=None, target: float | None = None, progress_path: str | None = None,
                 stop_at_target: bool = False, loss_scale: float | None = None, on_start=None, on_step=None):
        self.kind = task_kind
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self._evaluate = evaluate  # model -> dict(test_accuracy=..., test_loss=...) (timed apart)
        self.target = target
        self.stop_at_target = stop_at_target and target is not None
        self.stopped_at_target = False
        self._in_callback = False  # fit-style APIs: `epoch` returns True instead of raising
        self.progress_path = progress_path
        self.losses: list[float] = []
        self.step_times: list[float] = []  # duration of each step (previous boundary -> this one)
        self.step_epoch: list[int] = []
        self.epoch_losses: list[float] = []
        self.epoch_times: list[float] = []
        self.eval_times: list[float] = []
        self.evals: list[dict] = []
        self.time_to_target: float | None = None
        self.t_start: float | None = None
        self.first_step_s: float | None = None
        self._t_last = None
        self._t_epoch = None
        self._epoch_step0 = 0
        self._last_progress = 0.0
        self.running_mean_losses = False  # set by `keras_callback`: Keras logs the epoch's running mean
        self.loss_scale = loss_scale  # the task's natural loss scale (see DIVERGENCE_FACTOR)
        self._on_start = on_start  # called when timing starts (the harness's stability snapshot)
        self._on_step = on_step  # called after each step with the step count (`--profile-ops`): "start" | "stop" | None
        self._profiling = False
        self.profiled_steps: set[int] = set()  # indices of steps run under a profiler: not steady-state times

    # -- boundaries ------------------------------------------------------------------------------
    def start(self) -> None:
        """Called by the harness right before `train()`."""
        if self._on_start is not None:
            self._on_start()
        self.t_start = self._t_last = self._t_epoch = time.perf_counter()

    def step(self, loss=None) -> None:
        value = None if loss is None else float(loss)  # the sync: waits for the device
        now = time.perf_counter()
        if self._t_last is None:
            self.start()
        if value is not None:
            self._check_divergence(value)
        if self.first_step_s is None:
            self.first_step_s = now - self.t_start
        self.step_times.append(now - self._t_last)
        self.step_epoch.append(len(self.epoch_times))
        self.losses.append(value)
        self._t_last = now
        if self._profiling:
            self.profiled_steps.add(len(self.step_times) - 1)
        if self._on_step is not None and (switched := self._on_step(len(self.step_times))):
            self._profiling = switched == "start"
            self._t_last = time.perf_counter()  # starting or stopping the profiler is in no step's time
        if now - self._last_progress > 0.5:
            self._write_progress()

    def epoch(self, model=None, loss=None) -> bool:
        """End of an epoch: the epoch's mean loss (or `loss`, e.g. Keras's running mean), then the
        harness's evaluation of `model` on the test set, timed apart from training. With
        `stop_at_target`, reaching the target ends training: `TargetReached` from a hand-written loop,
        True (stop) from the fit-style callbacks."""
        now = time.perf_counter()
        if self._t_epoch is None:
            self.start()
        self.epoch_times.append(now - self._t_epoch)
        epoch_losses = [v for v in self.losses[self._epoch_step0:] if v is not None]
        if loss is not None:
            self.epoch_losses.append(float(loss))
        elif epoch_losses:
            self.epoch_losses.append(float(np.mean(epoch_losses)))
        self._epoch_step0 = len(self.losses)
        if self._evaluate is not None and model is not None:
            t0 = time.perf_counter()
            result = self._evaluate(model)
            self.eval_times.append(time.perf_counter() - t0)
            self.evals.append(result)
            acc = result.get("test_accuracy")
            if self.target is not None and self.time_to_target is None and acc is not None and acc >= self.target:
                self.time_to_target = sum(self.epoch_times)
        # restart the clocks after the evaluation, so that no step or epoch time includes it
        self._t_last = self._t_epoch = time.perf_counter()
        self._write_progress()
        if self.stop_at_target and self.time_to_target is not None:
            self.stopped_at_target = True
            if not self._in_callback:
                raise TargetReached(model)
            return True
        return False

    def _check_divergence(self, value: float) -> None:
        step, epoch = len(self.step_times) + 1, len(self.epoch_times) + 1
        first = next((v for v in self.losses if v is not None), None)
        if not math.isfinite(value):
            raise Diverged(f"loss is {value}", step, epoch, value, first)
        scale = max(abs(first if first is not None else value), self.loss_scale or 0.0)
        if scale > 0 and abs(value) > DIVERGENCE_FACTOR * scale:
            raise Diverged(f"loss {value:.4g} is over {DIVERGENCE_FACTOR:g}x its start scale {scale:.4g}",
                           step, epoch, value, first)

    # -- fit-style APIs ---------------------------------------------------------------------------
    def keras_callback(self):
        """A `keras.callbacks.Callback` calling `step` after every batch and `epoch` after every epoch."""
        import keras

        rec = self
        rec.running_mean_losses = True  # logs["loss"] after batch k is the mean of the epoch's first k
        rec._in_callback = True

        class RecorderCallback(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                rec.step((logs or {}).get("loss"))

            def on_epoch_end(self, epoch, logs=None):
                if rec.epoch(self.model, (logs or {}).get("loss")):
                    self.model.stop_training = True  # fit ends after this epoch

        return RecorderCallback()

    def lightning_callback(self):
        """A Lightning `Callback` doing the same for `Trainer.fit`."""
        import lightning as L

        rec = self
        rec._in_callback = True

        class RecorderCallback(L.Callback):
            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                loss = outputs["loss"] if isinstance(outputs, dict) else outputs
                # under accumulate_grad_batches=k the Trainer hands back the loss it backpropagated, loss / k
                rec.step(None if loss is None else loss.item() * trainer.accumulate_grad_batches)

            def on_train_epoch_end(self, trainer, pl_module):
                if rec.epoch(pl_module):
                    trainer.should_stop = True  # fit ends after this epoch

        return RecorderCallback()

    # -- results ----------------------------------------------------------------------------------
    def step_losses(self) -> list:
        """The loss of every step. Keras's `fit` logs the epoch's running mean m_k after batch k (over
        equal batches), so batch k's own loss is k*m_k - (k-1)*m_{k-1}; other frameworks give it directly."""
        if not self.running_mean_losses:
            return list(self.losses)
        out, k, previous, epoch = [], 0, 0.0, None
        for value, e in zip(self.losses, self.step_epoch):
            if e != epoch:
                k, previous, epoch = 0, 0.0, e
            k += 1
            if value is None:
                out.append(None)
                continue
            out.append(k * value - (k - 1) * previous)
            previous = value
        return out

    def steps_record(self) -> dict:
        """Every step's loss (per-step values, see `step_losses`), duration and epoch: the process's
        `steps.json`, which the tracking sinks read."""
        return {"losses": self.step_losses(), "step_s": [round(t, 7) for t in self.step_times],
                "epoch": list(self.step_epoch)}

    def steady_steps(self) -> list[float]:
        """Step times without each epoch's first step (data-pipeline start-up, compile on step 1).
        Where every epoch is one step (full-batch gradient descent), all steps but the very first. Steps
        run under `--profile-ops`'s profiler are left out."""
        first_of_epoch = {self.step_epoch.index(e) for e in set(self.step_epoch)}
        if len(first_of_epoch) == len(self.step_times):
            first_of_epoch = {0}
        return [t for i, t in enumerate(self.step_times) if i not in first_of_epoch and i not in self.profiled_steps]

    def timing(self) -> dict:
        train_s = sum(self.epoch_times) if self.epoch_times else (
            (self._t_last - self.t_start) if self.t_start is not None and self._t_last is not None else None)
        return {
            "first_step_s": self.first_step_s,
            "step_s": summarize(self.steady_steps()),
            "epoch_s": [round(t, 6) for t in self.epoch_times],
            "train_s": train_s,
            "eval_s": float(np.sum(self.eval_times)) if self.eval_times else None,
            "steps": len(self.step_times),
        }

    def _write_progress(self) -> None:
        if not self.progress_path:
            return
        self._last_progress = time.perf_counter()
        state = {"epoch": len(self.epoch_times), "epochs": self.epochs, "step": len(self.step_times),
                 "steps_per_epoch": self.steps_per_epoch,
                 "loss": next((v for v in reversed(self.losses) if v is not None), None)}
        if self.evals:
            state["test_accuracy"] = self.evals[-1].get("test_accuracy")
        tmp = self.progress_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, self.progress_path)


def call_durations(fn, repeats: int, warmup: int = 2) -> list[float]:
    """Seconds taken by each of `repeats` calls of `fn()`, after `warmup` untimed calls (first-call
    allocation, thread-pool start, compilation)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def time_calls(fn, repeats: int, warmup: int = 2) -> dict:
    """Median/IQR (milliseconds) of `fn()` over `repeats` calls after `warmup` calls."""
    return summarize([t * 1000.0 for t in call_durations(fn, repeats, warmup)])


def matmul_roofline(threads: int, n: int = 2048, repeats: int = 5) -> dict:
    """float32 GEMM throughput of this CPU (GFLOP/s): the MLP's roofline. Measured with numpy's BLAS
    and with every installed library that brings its own GEMM (torch: MKL/oneDNN; JAX: XLA's Eigen);
    the best of them is the roofline, each is kept in `libraries`."""
    import importlib.util

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    timers = {"numpy": lambda: a @ b}
    if importlib.util.find_spec("torch"):
        import torch

        torch.set_num_threads(threads)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        timers["torch"] = lambda: torch.mm(ta, tb)
    if importlib.util.find_spec("jax"):
        import jax

        ja, jb = jax.device_put(a), jax.device_put(b)
        dot = jax.jit(lambda x, y: x @ y)
        timers["jax"] = lambda: dot(ja, jb).block_until_ready()
    libraries = {name: round(2 * n**3 / min(call_durations(fn, repeats, warmup=1)) / 1e9, 1)
                 for name, fn in timers.items()}
    best = max(libraries, key=libraries.get)
    return {"sgemm_gflops": libraries[best], "n": n, "threads": threads, "library": best, "libraries": libraries}
