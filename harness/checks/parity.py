"""`dlrosetta parity`: proof that the columns compute the same model.

Every column trains from the same initial weights (`--init shared`: `harness.matrix.init.shared_params`, one
canonical layout that each framework converts in its own idiom), on the same batches (the harness's
batch order), with the same optimiser settings (Adam's epsilon = 1e-8 everywhere), in float32 with
deterministic kernels, for exactly N steps (default 100). Each column records its per-step losses and
its untrained model's outputs on ``x_train[:32]``; this module compares them with each other and with a
float64 numpy reference computed here, framework-free (forward and backward of the MLP, the CNN and
linear regression; plain gradient descent and Adam):

  first step    the loss of the first batch of epoch 0 under the shared weights: equal to the float64
                reference within 1e-5 relative in every column. Same architecture, same layout
                conversion (dense [in, out], conv HWIO, NHWC flatten), same loss, same batch.
  first logits  max |Δ| of `predict` on x_train[:32] before training against the reference forward.
  curve         each column's loss at every step against the median column with the same update
                rule, and against the float64 reference with that rule: within 1e-5 relative for
                linear regression, 1e-3 for MNIST — or 3 x the task's float32 floor where float32
                round-off alone drifts further (the CNN: a numpy float32 run of the same 100 Adam steps
                drifts ~3e-3 from float64). Same optimiser, hyper-parameters and batch order.

Adam is not written the same way everywhere (`ADAM`, `RULES`): torch and optax add eps to sqrt(v_hat);
Keras and TF1 use "epsilon hat" (eps on sqrt(v), the bias correction folded into the step size); optax
and Keras compute their bias corrections in float32, a few 1e-6 off, which the MLP's 100 Adam steps
amplify to ~1e-2 (its near-dead ReLU units get tiny gradients that Adam turns into full-size steps).
The float64 reference computes each rule, so each column is checked against its own, and the reference
row says how far each rule alone moves the curve (`rule_effect_max_rel_dev`). A column whose rule or
round-off puts it beyond the nominal threshold carries the measured reason in `explained`.

Files in the run dir:
  parity_cells.jsonl    the runner's row of every cell (as in results.jsonl, plus metrics.step_losses and
                        metrics.initial_outputs); `--resume` continues it, so each framework family's env
                        can add its columns to the same dir (the analysis covers every row in it)
  parity.jsonl          the verdicts, rewritten after each invocation: per group (task, dataset, mode,
                        device, steps) one "reference" row, then one "column" row per cell (`analyse`)
  parity_reference.json the float64 (and float32) reference curves, cached per spec and step count
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from itertools import count
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from harness.matrix import data as data_mod
from harness.matrix.init import shared_params
from harness.matrix.tasks import TANH_MODE_SETTINGS, TASKS, make_spec, spec_to_dict
from harness.running.cell import _json_default
from harness.running.progress import MARK

SCHEMA = 1
CELLS_FILE = "parity_cells.jsonl"
PARITY_FILE = "parity.jsonl"
REFERENCE_CACHE = "parity_reference.json"
FIRST_STEP_RTOL = 1e-5  # first-step loss vs the float64 reference, every task
# every step, vs the median column and vs the reference; per `parity_kind` (tanh regression: its tanh units
# amplify float32 round-off over 100 steps far beyond linear regression's, so MNIST's threshold)
CURVE_RTOL = {"linreg": 1e-5, "mnist": 1e-3, "tanh": 1e-3, "tanh_adam": 1e-3}
# ... unless float32 round-off alone drifts further: the float32 floor of a task is how far a numpy
# float32 run of the same training drifts from float64; curves are then held to FLOOR_FACTOR x it
FLOOR_FACTOR = 3.0
LOGIT_ROWS = 32  # = harness.running.cell.PARITY_ROWS
IDX_TRAIN_ROWS = 60_000  # MNIST and Fashion-MNIST training images

# What each column's Adam computes, and its default epsilon (`--init native`); `--init shared` passes
# eps = 1e-8 to all. "rule" names the float64 reference curve that models it (see `reference_curve`).
EPS_SQRT_VHAT = "p -= lr * m_hat / (sqrt(v_hat) + eps)"
EPS_HAT = "p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)  (epsilon hat)"
OPTAX = {"api": "optax.adam", "default_eps": 1e-8, "placement": EPS_SQRT_VHAT + "  (eps_root = 0)",
         "rule": "optax_adam"}
TORCH_ADAM = {"api": "torch.optim.Adam", "default_eps": 1e-8, "placement": EPS_SQRT_VHAT, "rule": "sqrt_vhat"}
KERAS_ADAM = {"api": "keras.optimizers.Adam", "default_eps": 1e-7, "placement": EPS_HAT, "rule": "keras_adam"}
ADAM = {
    "pytorch": TORCH_ADAM, "lightning": TORCH_ADAM,
    "tf1": {"api": "tf.compat.v1.train.AdamOptimizer", "default_eps": 1e-8, "placement": EPS_HAT, "rule": "eps_hat"},
    "tf2": {**KERAS_ADAM, "api": "tf.keras.optimizers.Adam (Keras 3)"},
    "keras-tensorflow": KERAS_ADAM, "keras-jax": KERAS_ADAM, "keras-torch": KERAS_ADAM,
    "jax": OPTAX, "flax": OPTAX, "haiku": OPTAX,
}
# The update rules of the float64 reference, and why a column's curve may differ from the primary one.
RULES = {
    "gd": "plain gradient descent",
    "sqrt_vhat": "Adam, eps added to sqrt(v_hat) (torch)",
    "optax_adam": "Adam as optax writes it: eps added to sqrt(v_hat), with the bias corrections 1 - b^t computed "
                  "in float32 (decay ** count under jit) while the moments use (1 - b) from Python floats: "
                  "v_hat comes out about 1.3e-5 relative large, the step about 6.5e-6 short",
    "eps_hat": "Adam, epsilon hat: eps added to sqrt(v), the bias correction folded into the step size (TF1)",
    "keras_adam": "Adam as Keras writes it: epsilon hat, and the step size lr*sqrt(1-b2^t)/(1-b1^t) computed in "
                  "float32 from float32 powers of b1, b2 while the moments use (1 - b) from Python floats: "
                  "the step comes out about 6.7e-6 relative short",
}
PRIMARY_RULE = {"linreg": "gd", "mnist": "sqrt_vhat", "tanh": "gd", "tanh_adam": "sqrt_vhat"}


def parity_kind(task: str, mode: str | None = None) -> str:
    """How a group is checked: the task's kind, except tanh regression, "tanh" (SGD) or "tanh_adam" by mode."""
    if task == "tanh_regression":
        return "tanh_adam" if TANH_MODE_SETTINGS.get(mode, {}).get("optimizer") == "adam" else "tanh"
    return TASKS[task].kind

# Each column's own initialiser (`--init native`, the default of `dlrosetta run`), as its file uses it.
TORCH_INIT = "kaiming_uniform(a=sqrt 5): kernels and biases U(±1/sqrt(fan_in)) (nn.Linear, nn.Conv2d defaults)"
GLOROT_INIT = "glorot_uniform kernels, zero biases"
NATIVE_INIT = {
    "pytorch": TORCH_INIT, "lightning": TORCH_INIT,
    "tf1": GLOROT_INIT + " (explicit: get_variable's default would draw biases Glorot too)",
    "tf2": GLOROT_INIT + " (drawn with tf.random.uniform, Keras's defaults)",
    "keras-tensorflow": GLOROT_INIT, "keras-jax": GLOROT_INIT, "keras-torch": GLOROT_INIT,
    "jax": "lecun_normal kernels (jax.nn.initializers), zero biases",
    "flax": "lecun_normal kernels, zero biases (Flax defaults)",
    "haiku": "truncated normal kernels, stddev 1/sqrt(fan_in) (Haiku defaults), zero biases",
    "numpy": "zeros (linear regression)",
}

# ==================================================================================================
# The float64 numpy reference
# ==================================================================================================
def reference_params(spec, dtype=np.float64) -> list[dict[str, np.ndarray]]:
    """The shared initial weights in float64 (the float32 values, exactly), or in `dtype`."""
    return [{k: v.astype(dtype) for k, v in layer.items()} for layer in shared_params(spec)]


def im2col(x: np.ndarray, k: int) -> np.ndarray:
    """(n, h, w, c) -> (n, h-k+1, w-k+1, k*k*c): every k x k patch, flattened in HWC order (as HWIO)."""
    windows = sliding_window_view(x, (k, k), axis=(1, 2))  # (n, oh, ow, c, kh, kw)
    n, oh, ow, c = windows.shape[:4]
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(n, oh, ow, k * k * c)


def col2im(cols: np.ndarray, shape: tuple, k: int) -> np.ndarray:
    """The adjoint of `im2col`: add every patch's gradient back onto the input."""
    n, h, w, c = shape
    oh, ow = h - k + 1, w - k + 1
    patches = cols.reshape(n, oh, ow, k, k, c)
    out = np.zeros(shape, dtype=cols.dtype)
    for i in range(k):
        for j in range(k):
            out[:, i:i + oh, j:j + ow] += patches[:, :, :, i, j]
    return out


def conv2d_valid(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Valid cross-correlation, stride 1: x NHWC, kernel HWIO."""
    kh, _, _, filters = kernel.shape
    return im2col(x, kh) @ kernel.reshape(-1, filters) + bias


def max_pool(x: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """p x p max-pooling, stride p, floor (the last odd row/column dropped); returns the argmax too."""
    n, h, w, c = x.shape
    ho, wo = h // p, w // p
    windows = x[:, :ho * p, :wo * p].reshape(n, ho, p, wo, p, c).transpose(0, 1, 3, 5, 2, 4)
    windows = windows.reshape(n, ho, wo, c, p * p)
    arg = windows.argmax(axis=-1)
    return np.take_along_axis(windows, arg[..., None], axis=-1)[..., 0], arg


def max_pool_backward(grad: np.ndarray, arg: np.ndarray, shape: tuple, p: int) -> np.ndarray:
    n, ho, wo, c = grad.shape
    windows = np.zeros((n, ho, wo, c, p * p), dtype=grad.dtype)
    np.put_along_axis(windows, arg[..., None], grad[..., None], axis=-1)
    out = np.zeros(shape, dtype=grad.dtype)
    out[:, :ho * p, :wo * p] = windows.reshape(n, ho, wo, c, p, p).transpose(0, 1, 4, 2, 5, 3).reshape(
        n, ho * p, wo * p, c)
    return out


def forward(spec, params, x, cache: list | None = None) -> np.ndarray:
    """The task's model in float64: logits (MNIST) or predictions (n, 1) (linear regression).
    With `cache` (a list), keeps per layer what `backward` needs."""
    cache = [] if cache is None else cache
    h = np.asarray(x, dtype=params[0]["kernel"].dtype)  # float64 (the reference) unless given otherwise
    n_conv = len(spec.conv_filters) if getattr(spec, "model", None) == "cnn" else 0
    for layer in params[:n_conv]:  # conv -> ReLU -> max-pool
        cols = im2col(h, spec.kernel_size)
        z = cols @ layer["kernel"].reshape(-1, layer["kernel"].shape[-1]) + layer["bias"]
        pooled, arg = max_pool(np.maximum(z, 0.0), spec.pool_size)
        cache.append({"input_shape": h.shape, "cols": cols, "z": z, "arg": arg, "out_shape": pooled.shape})
        h = pooled
    h = h.reshape(len(h), -1)  # NHWC flatten: (h, w, c), as Keras, TF and Flax flatten
    dense = params[n_conv:]
    for i, layer in enumerate(dense):
        z = h @ layer["kernel"] + layer["bias"]
        cache.append({"input": h, "z": z})
        if i < len(dense) - 1:  # ReLU between (tanh in tanh regression), none after the last
            h = np.tanh(z) if spec.task == "tanh_regression" else np.maximum(z, 0.0)
        else:
            h = z
    return h


def backward(spec, params, cache, grad_out) -> list[dict[str, np.ndarray]]:
    """Gradients of every layer's kernel and bias, given d loss / d output."""
    n_conv = len(spec.conv_filters) if getattr(spec, "model", None) == "cnn" else 0
    grads: list = [None] * len(params)
    g = grad_out
    for i in reversed(range(len(params))):
        c = cache[i]
        if i >= n_conv:  # dense
            if i < len(params) - 1:  # through the activation: tanh' = 1 - tanh², ReLU' = [z > 0]
                g = g * ((1.0 - np.tanh(c["z"]) ** 2) if spec.task == "tanh_regression" else (c["z"] > 0))
            grads[i] = {"kernel": c["input"].T @ g, "bias": g.sum(axis=0)}
            g = g @ params[i]["kernel"].T
        else:  # conv -> ReLU -> pool, backwards
            g = max_pool_backward(g.reshape(c["out_shape"]), c["arg"], c["z"].shape, spec.pool_size)
            g = g * (c["z"] > 0)
            kernel = params[i]["kernel"]
            filters = kernel.shape[-1]
            grads[i] = {"kernel": (c["cols"].reshape(-1, c["cols"].shape[-1]).T @ g.reshape(-1, filters)
                                   ).reshape(kernel.shape),
                        "bias": g.sum(axis=(0, 1, 2))}
            if i > 0:
                g = col2im(g @ kernel.reshape(-1, filters).T, c["input_shape"], spec.kernel_size)
    return grads


def loss_and_grad(spec, out: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy (mean) for MNIST, MSE (mean) for linear and tanh regression, and d loss / d out."""
    n = len(out)
    if TASKS[spec.task].kind == "linreg":
        residual = out - y.astype(out.dtype).reshape(out.shape)
        return float(np.mean(residual**2)), 2.0 * residual / residual.size
    z = out - out.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = float(-log_probs[np.arange(n), y].mean())
    grad = np.exp(log_probs)
    grad[np.arange(n), y] -= 1.0
    return loss, grad / n


def shared_batches(data):
    """The harness's batch order, epoch after epoch."""
    for epoch in count():
        for idx in data.epoch_batches(epoch):
            yield data.x_train[idx], data.y_train[idx]


def update_rule(task: str, framework: str, mode: str | None = None) -> str:
    """How a column updates its parameters: a key of `RULES`."""
    if PRIMARY_RULE[parity_kind(task, mode)] == "gd":
        return "gd"
    return ADAM.get(framework, {}).get("rule", "sqrt_vhat")


def reference_curve(spec, data, steps: int, rule: str = "sqrt_vhat", dtype=np.float64) -> list[float]:
    """The loss of each of `steps` steps in float64 (or `dtype`), updating with `rule` (see `RULES`)."""
    params = reference_params(spec, dtype)
    m = [{k: np.zeros_like(v) for k, v in layer.items()} for layer in params]
    v = [{k: np.zeros_like(v) for k, v in layer.items()} for layer in params]
    eps = getattr(spec, "adam_eps", None) or 1e-8
    losses = []
    for t, (x, y) in zip(range(1, steps + 1), shared_batches(data)):
        cache: list = []
        loss, grad_out = loss_and_grad(spec, forward(spec, params, x, cache), y)
        losses.append(loss)
        grads = backward(spec, params, cache, grad_out)
        c1, c2 = 1 - getattr(spec, "beta1", 0.0)**t, 1 - getattr(spec, "beta2", 0.0)**t  # bias corrections
        if rule == "optax_adam":  # the same update as torch's, with optax's float32 bias corrections
            c1, c2 = float32_bias_corrections(spec, t)
        alpha = keras_step_size(spec, t) if rule == "keras_adam" else spec.lr * math.sqrt(c2) / c1
        for i, layer in enumerate(params):
            for k, g in grads[i].items():
                if rule == "gd":
                    layer[k] = layer[k] - spec.lr * g
                    continue
                m[i][k] = spec.beta1 * m[i][k] + (1 - spec.beta1) * g
                v[i][k] = spec.beta2 * v[i][k] + (1 - spec.beta2) * g * g
                if rule in ("eps_hat", "keras_adam"):  # the bias correction in the step size, eps on sqrt(v)
                    layer[k] = layer[k] - alpha * m[i][k] / (np.sqrt(v[i][k]) + eps)
                else:  # eps on sqrt(v_hat)
                    layer[k] = layer[k] - spec.lr * (m[i][k] / c1) / (np.sqrt(v[i][k] / c2) + eps)
    return losses


def keras_step_size(spec, t: int) -> float:
    """keras.optimizers.Adam's alpha = lr * sqrt(1 - b2^t) / (1 - b1^t), every scalar a float32."""
    f = np.float32
    return float(f(spec.lr) * np.sqrt(f(1) - f(spec.beta2) ** f(t)) / (f(1) - f(spec.beta1) ** f(t)))


def float32_bias_corrections(spec, t: int) -> tuple[float, float]:
    """optax's 1 - b1^t and 1 - b2^t: computed in float32 (decay ** count inside a jitted function)."""
    f = np.float32
    return float(f(1) - f(spec.beta1) ** f(t)), float(f(1) - f(spec.beta2) ** f(t))


def reference_first_step(spec, data) -> dict:
    """The first-step loss every column must reproduce, and the untrained model's outputs."""
    params = reference_params(spec)
    x, y = next(shared_batches(data))
    loss, _ = loss_and_grad(spec, forward(spec, params, x), y)
    return {"first_step_loss": loss, "initial_outputs": forward(spec, params, data.x_train[:LOGIT_ROWS]).tolist()}


# ==================================================================================================
# Comparison
# ==================================================================================================
def rel_dev(a: float, b: float) -> float:
    return abs(a - b) / abs(b) if b else abs(a - b)


def max_rel_dev(curve, against) -> float | None:
    if curve is None or against is None:
        return None
    n = min(len(curve), len(against))
    a = np.asarray(curve[:n], dtype=np.float64)
    b = np.asarray(against[:n], dtype=np.float64)
    dev = np.abs(a - b) / np.where(b == 0, 1.0, np.abs(b))
    return float(np.max(dev)) if dev.size else None


def group_key(row: dict) -> tuple:
    return row["task"], row.get("dataset"), row.get("mode"), row.get("device"), row.get("parity_steps")


def group_label(key: tuple) -> str:
    task, dataset, mode, device, steps = key
    extra = " · ".join(x for x in (dataset, mode) if x)
    return f"{task} · {extra} · {device} · {steps} steps"


def latest_rows(rows: list[dict]) -> list[dict]:
    """One row per cell: the last one, unless it is `unavailable` and an earlier one is not (a family
    env that could not run a column must not hide the env that did)."""
    best: dict[str, dict] = {}
    for r in rows:
        old = best.get(r["cell"])
        if old is None or r.get("status") != "unavailable" or old.get("status") == "unavailable":
            best[r["cell"]] = r
    return list(best.values())


def full_curve(row: dict, steps: int) -> np.ndarray | None:
    losses = (row.get("metrics") or {}).get("step_losses")
    if row.get("status") != "ok" or not losses or len(losses) < steps:
        return None
    if not all(v is not None and math.isfinite(v) for v in losses[:steps]):
        return None
    return np.asarray(losses[:steps], dtype=np.float64)


def analyse(rows: list[dict], references: dict) -> list[dict]:
    """parity.jsonl rows: per group (task, dataset, mode, device, steps), one "reference" row, then one
    "column" row per cell. `references`: group key -> `compute_references` entry."""
    out = []
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(group_key(r), []).append(r)
    order = list(TASKS)
    for key in sorted(groups, key=lambda k: (order.index(k[0]), *(str(x) for x in k[1:]))):
        members = groups[key]
        task, dataset, mode, device, steps = key
        kind = parity_kind(task, mode)
        ref = references.get(key) or {"error": "no reference"}
        curves = {r["cell"]: c for r in members if (c := full_curve(r, steps)) is not None}
        rules = {r["cell"]: update_rule(task, r["framework"], mode) for r in members}
        median = _median(list(curves.values()))
        by_rule = {rule: _median([c for cell, c in curves.items() if rules[cell] == rule])
                   for rule in sorted(set(rules[cell] for cell in curves))}
        ref_curves = ref.get("curves") or {}
        primary = PRIMARY_RULE[kind]
        metrics = {
            "first_step_loss": ref.get("first_step_loss"),
            "step_losses": ref_curves.get(primary),
            "rule": primary,
            "step_losses_by_rule": ref_curves,
            "rule_effect_max_rel_dev": {rule: max_rel_dev(c, ref_curves.get(primary))
                                        for rule, c in ref_curves.items() if rule != primary},
            "eps_placement_max_rel_dev": max_rel_dev(ref_curves.get("eps_hat"), ref_curves.get("sqrt_vhat")),
            "float32_step_losses": ref.get("float32_curve"),
            "float32_floor": max_rel_dev(ref.get("float32_curve"), ref_curves.get(primary)),
            "median_step_losses": _list(median),
            "median_step_losses_by_rule": {rule: _list(c) for rule, c in by_rule.items()},
            "columns_rule_gap": {rule: max_rel_dev(_list(c), _list(by_rule.get(primary)))
                                 for rule, c in by_rule.items() if rule != primary},
            "n_columns": len(curves),
            "n_columns_by_rule": {rule: sum(rules[c] == rule for c in curves) for rule in by_rule},
            "seconds": ref.get("seconds"),
        }
        out.append({
            "schema": SCHEMA, "kind": "reference", "group": group_label(key), "task": task, "dataset": dataset,
            "mode": mode, "device": device, "steps": steps, "framework": "numpy-float64", "variant": "reference",
            "status": "failed" if "error" in ref else "ok", "error": ref.get("error"),
            "thresholds": {"first_step_rel": FIRST_STEP_RTOL, "curve_rel": CURVE_RTOL[kind],
                           "curve_rel_applied": curve_tolerance(kind, metrics["float32_floor"])},
            "rules": {rule: RULES[rule] for rule in sorted(set(ref_curves) | set(by_rule))},
            "metrics": metrics,
        })
        for r in sorted(members, key=lambda r: r["cell"]):
            rule = rules[r["cell"]]
            out.append(column_row(r, kind, steps, ref, rule, curves.get(r["cell"]), by_rule.get(rule), median,
                                  metrics))
    return out


def _median(curves: list) -> np.ndarray | None:
    return np.median(np.stack(curves), axis=0) if curves else None


def _list(curve) -> list | None:
    return None if curve is None else [float(v) for v in curve]


def curve_tolerance(kind: str, float32_floor: float | None) -> float:
    """The curve threshold, widened to FLOOR_FACTOR x the float32 floor where round-off alone exceeds it."""
    return max(CURVE_RTOL[kind], FLOOR_FACTOR * float32_floor) if float32_floor is not None else CURVE_RTOL[kind]


def column_row(r: dict, kind: str, steps: int, ref: dict, rule: str, curve, rule_median, median,
               group: dict) -> dict:
    """One column's verdict. `passed` is None for a column that did not run here (unavailable, n/a).
    `group`: the reference row's metrics (rule effects, float32 floor)."""
    m = r.get("metrics") or {}
    losses = m.get("step_losses")
    own_reference = (ref.get("curves") or {}).get(rule)
    metrics = {"step_losses": losses, "steps_recorded": len(losses) if losses else 0,
               "step_losses_from_running_mean": m.get("step_losses_from_running_mean"),
               "update_rule": rule,
               "first_step_loss": losses[0] if losses else None,
               "reference_first_step_loss": ref.get("first_step_loss"),
               "first_step_rel_dev": None, "first_logits_max_abs_diff": None,
               "max_curve_rel_dev": max_rel_dev(curve, rule_median),
               "curve_rel_dev_vs_all_median": max_rel_dev(curve, median),
               "curve_rel_dev_vs_reference": max_rel_dev(curve, own_reference),
               "curve_rel_dev_vs_primary_reference": max_rel_dev(
                   curve, (ref.get("curves") or {}).get(PRIMARY_RULE[kind])),
               "param_count": m.get("param_count")}
    failures, explained = [], []
    status = r.get("status")
    nominal, floor = CURVE_RTOL[kind], group.get("float32_floor")
    tol = curve_tolerance(kind, floor)
    if status in ("unavailable", "not_applicable"):
        passed = None
    elif status != "ok":
        failures.append(f"{status}: {r.get('error')}")
        passed = False
    else:
        if "error" in ref:
            failures.append(f"no reference: {ref['error']}")
        if metrics["first_step_loss"] is not None and ref.get("first_step_loss") is not None:
            metrics["first_step_rel_dev"] = rel_dev(metrics["first_step_loss"], ref["first_step_loss"])
            if not metrics["first_step_rel_dev"] <= FIRST_STEP_RTOL:
                failures.append(f"first-step loss {metrics['first_step_loss']:.8g} is "
                                f"{metrics['first_step_rel_dev']:.2e} from the reference "
                                f"{ref['first_step_loss']:.8g} (> {FIRST_STEP_RTOL:g})")
        if m.get("initial_outputs") is not None and ref.get("initial_outputs") is not None:
            got = np.asarray(m["initial_outputs"], dtype=np.float64)
            want = np.asarray(ref["initial_outputs"], dtype=np.float64)
            if got.size == want.size:
                metrics["first_logits_max_abs_diff"] = float(np.max(np.abs(got.reshape(want.shape) - want)))
            else:
                failures.append(f"initial outputs have shape {got.shape}, the reference {want.shape}")
        if curve is None:
            failures.append(f"recorded {metrics['steps_recorded']} finite step losses, expected {steps}")
        else:
            checks = (("max_curve_rel_dev", f"the median column with the same update rule ({rule})"),
                      ("curve_rel_dev_vs_reference", f"the float64 reference with its update rule ({rule})"))
            for name, against in checks:
                dev = metrics[name]
                if dev is not None and not dev <= tol:
                    failures.append(f"loss curve {dev:.2e} from {against} (> {tol:.2g})")
            worst = max(v for v in (metrics["max_curve_rel_dev"], metrics["curve_rel_dev_vs_reference"], 0.0)
                        if v is not None)
            if nominal < worst <= tol:
                explained.append(
                    f"float32 round-off: this training amplifies it; numpy in float32 drifts {_fmt(floor)} from "
                    f"float64 over the same {steps} steps, so curves are held to {FLOOR_FACTOR:g} x that "
                    f"({tol:.2g}) instead of {nominal:g}; this column: {_fmt(worst)}")
            primary_dev = metrics["curve_rel_dev_vs_primary_reference"]
            if rule != PRIMARY_RULE[kind] and primary_dev is not None and primary_dev > tol:
                effects = group.get("rule_effect_max_rel_dev") or {}
                shown = ("eps_hat", rule) if rule == "keras_adam" else (rule,)
                explained.append(
                    f"{RULES[rule]}. In float64 that changes the curve by "
                    + "; ".join(f"{_fmt(effects.get(name))} ({name})" for name in shown if name in effects)
                    + f" against {RULES[PRIMARY_RULE[kind]]}; this column is "
                    f"{_fmt(metrics['curve_rel_dev_vs_reference'])} from the float64 reference with its own rule, "
                    f"{_fmt(primary_dev)} from the one with {PRIMARY_RULE[kind]}")
        passed = not failures
    return {
        "schema": SCHEMA, "kind": "column", "run_id": r.get("run_id"), "cell": r["cell"],
        "group": group_label(group_key(r)), "task": r["task"], "framework": r["framework"],
        "variant": r.get("variant"), "device": r.get("device"), "dataset": r.get("dataset"), "mode": r.get("mode"),
        "steps": steps, "status": status, "error": r.get("error"), "passed": passed, "failures": failures,
        "explained": " | ".join(explained) or None,
        "thresholds": {"first_step_rel": FIRST_STEP_RTOL, "curve_rel": nominal, "curve_rel_applied": tol},
        "metrics": metrics, "optimizer": ADAM.get(r["framework"]) if PRIMARY_RULE[kind] != "gd" else None,
        "native_init": NATIVE_INIT.get(r["framework"]) if kind != "linreg" else None,
        "adam_eps": (r.get("spec") or {}).get("adam_eps"), "versions": r.get("versions"),
    }


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.1e}"


# ==================================================================================================
# The run
# ==================================================================================================
def cell_params(task: str, dataset: str | None, mode: str | None, profile: str, steps: int, data_dir) -> tuple:
    """Spec overrides that make a cell train exactly `steps` steps (or more, over several epochs, where
    the training set is too small; the first `steps` are compared)."""
    spec = make_spec(task, profile, dataset=dataset, mode=mode, init="shared")
    if TASKS[task].kind == "mnist":
        rows = steps * spec.batch_size
        test = min(spec.test_subset or 1000, 1000)  # evaluation is not compared: keep it cheap
        if rows <= IDX_TRAIN_ROWS:
            return (("train_subset", rows), ("epochs", 1), ("test_subset", test))
        return (("train_subset", None), ("epochs", math.ceil(steps / (IDX_TRAIN_ROWS // spec.batch_size))),
                ("test_subset", test), ("stop_at_target", False))
    if spec.batch_size is None:  # full batch: one step per epoch
        return (("epochs", steps),)
    n_train = len(data_mod.load(spec, data_dir).x_train)
    rows = steps * spec.batch_size
    if rows <= n_train:
        return (("epochs", 1), ("max_rows", rows))
    return (("epochs", math.ceil(steps / (n_train // spec.batch_size))), ("max_rows", None))


def plan(selection: dict, steps: int, profile: str, data_dir) -> tuple[list, list[str]]:
    """The cells of a parity run, and notes on what the selection leaves out."""
    from harness.matrix.registry import enumerate_cells

    cells, notes = [], []
    for task in selection["tasks"]:
        info = TASKS[task]
        if info.kind == "x2":
            notes.append("x2_descent: not part of parity (every run checks its trajectory against 10·0.8^k)")
            continue
        datasets = [d for d in (selection["datasets"] or []) if d in info.datasets] or [
            "mnist" if info.kind == "mnist" else info.datasets[0]]
        modes = [m for m in (selection["modes"] or []) if m in info.modes] or PARITY_MODES.get(task, [None])
        for dataset in datasets:
            for mode in modes:
                params = cell_params(task, dataset, mode, profile, steps, data_dir)
                cells += enumerate_cells([task], selection["frameworks"], [selection["device"]], [dataset],
                                         [mode] if mode else None, selection["variants"], [params])
    return cells, notes


# the modes a parity run checks unless --modes says otherwise: tanh regression's both optimizers
PARITY_MODES = {"linear_regression": ["full-batch"], "tanh_regression": ["full-batch", "adam-minibatch"]}


def compute_references(rows: list[dict], data_dir, cache_path: Path | None = None) -> dict:
    """group key -> {"first_step_loss", "initial_outputs", "curves": {rule: losses}, "seconds": {rule: s}}
    (or {"error"}), for the update rules the group's columns use. Kept in `cache_path`, so that each
    family's env does not recompute what an earlier one did."""
    cache = {}
    if cache_path is not None and cache_path.exists():
        try:
            cache = json.loads(cache_path.read_text())
        except ValueError:
            cache = {}
    references, groups = {}, {}
    for r in rows:
        groups.setdefault(group_key(r), []).append(r)
    for key, members in groups.items():
        task, dataset, mode, device, steps = key
        r = members[0]
        rules = {PRIMARY_RULE[parity_kind(task, mode)]} | {update_rule(task, m["framework"], mode) for m in members
                                                     if m.get("status") == "ok"}
        if "keras_adam" in rules:  # to tell the placement's effect from the float32 step size's
            rules.add("eps_hat")
        try:
            spec = make_spec(task, r["profile"], dataset=dataset, mode=mode, init="shared",
                             **dict(r.get("params") or {}))
            cache_key = json.dumps([spec_to_dict(spec), steps], sort_keys=True, default=str)
            entry = cache.setdefault(cache_key, {"curves": {}, "seconds": {}})
            data = None
            if "first_step_loss" not in entry or any(rule not in entry["curves"] for rule in rules):
                data = data_mod.load(spec, data_dir)
                entry.update(reference_first_step(spec, data))
            for rule in sorted(rules - set(entry["curves"])):
                t0 = time.perf_counter()
                entry["curves"][rule] = reference_curve(spec, data, steps, rule)
                entry["seconds"][rule] = time.perf_counter() - t0
            if "float32_curve" not in entry:  # the same training in float32: how far round-off alone drifts
                data = data or data_mod.load(spec, data_dir)
                t0 = time.perf_counter()
                entry["float32_curve"] = reference_curve(spec, data, steps, PRIMARY_RULE[parity_kind(task, mode)],
                                                         np.float32)
                entry["seconds"]["float32"] = time.perf_counter() - t0
            references[key] = entry
        except Exception as exc:  # noqa: BLE001 - e.g. missing data: every column of the group says so
            references[key] = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
    if cache_path is not None:
        write_json(cache_path, cache)
    return references


def write_json(path: Path, value) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, default=_json_default))
    os.replace(tmp, path)


def main(args, selection: dict) -> int:
    from harness.matrix.tasks import SpecError as UsageError  # a usage error: one line, exit 2
    from harness.measuring import environment
    from harness.running import runner
    from harness.running.progress import Progress

    steps = args.steps  # validated by the parser (an integer >= 1)
    out = Path(args.out or Path("runs") / time.strftime("parity-%Y%m%d-%H%M%S"))
    cells_path = out / CELLS_FILE
    if cells_path.exists() and not args.resume and runner.read_rows(cells_path):
        raise UsageError(f"{cells_path} already has results: pass --resume to continue it, or another --out")
    cells, notes = plan(selection, steps, args.profile, args.data_dir)
    if not cells:
        raise UsageError("the selection matches no parity cell (tasks: mnist_mlp, mnist_cnn, linear_regression, tanh_regression)")
    out.mkdir(parents=True, exist_ok=True)
    if (out / "environment.json").exists():
        run_id = json.loads((out / "environment.json").read_text()).get("run_id", "")
    else:
        info = environment.describe(args.threads, args.profile, selection["device"], with_roofline=False)
        info["run_id"] = run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-parity"
        environment.write(out, info)
    opts = runner.RunOptions(out=out, profile=args.profile, timeout=args.timeout, threads=args.threads,
                             data_dir=args.data_dir, init="shared", onnx=False, run_id=run_id, parity=True,
                             max_memory_gb=args.max_memory)
    done = runner.completed_keys(cells_path) if args.resume else set()
    todo = [c for c in cells if (c.key, 0) not in done]
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    for note in notes:
        say(f"parity: {note}")
    say(f"parity: {len(todo)} cells ({len(cells) - len(todo)} already done), {steps} steps each from the shared "
        f"weights, float32, Adam eps 1e-8 -> {out / PARITY_FILE}")
    progress = Progress(len(todo), live=args.progress and sys.stderr.isatty())
    try:
        for cell in todo:
            progress.begin(cell)
            row = runner.run_cell(cell, opts, on_progress=progress.update)
            row["parity_steps"] = steps
            runner.append_row(cells_path, row)
            progress.end(cell, row)
    except KeyboardInterrupt:
        say(f"\ninterrupted: finished cells are in {cells_path}; rerun with --resume to go on")
        return 130

    rows = [r for r in latest_rows(runner.read_rows(cells_path)) if r.get("status") != "not_applicable"]
    parity_rows = analyse(rows, compute_references(rows, args.data_dir, out / REFERENCE_CACHE))
    write_rows(out / PARITY_FILE, parity_rows)
    print(summary_table(parity_rows))
    failed = [r for r in parity_rows if r["kind"] == "column" and r["passed"] is False]
    if failed:
        say(f"parity: {len(failed)} column(s) miss the thresholds:")
        for r in failed:
            say(f"  {r['cell']}: {'; '.join(r['failures'])}")
        return 1
    return 0


def write_rows(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        for r in rows:
            f.write(json.dumps(r, default=_json_default, allow_nan=True) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def summary_table(rows: list[dict]) -> str:
    """Per task: each column's first-step deviation, first logits' max |Δ|, curve deviations, verdict."""
    lines = []
    for r in rows:
        m = r["metrics"]
        if r["kind"] == "reference":
            first = m.get("first_step_loss")
            lines += ["", f"{r['group']}: reference first-step loss "
                          f"{'-' if first is None else format(first, '.8g')} (numpy float64)"]
            for rule, effect in (m.get("rule_effect_max_rel_dev") or {}).items():
                gap = (m.get("columns_rule_gap") or {}).get(rule)
                lines.append(f"  update rule {rule} instead of {m['rule']} moves the float64 curve {_fmt(effect)}"
                             + (f"; the columns' medians differ by {_fmt(gap)}" if gap is not None else ""))
            if m.get("float32_floor") is not None:
                lines.append(f"  float32 floor: numpy in float32 drifts {_fmt(m['float32_floor'])} from float64 over "
                             f"these steps; curves are held to {r['thresholds']['curve_rel_applied']:.2g}")
            if r["error"]:
                lines.append(f"  reference failed: {r['error']}")
            lines.append(f"  {'column':<30} {'status':<7} {'rule':<11} {'1st step':>8} {'logits':>8} "
                         f"{'vs median':>9} {'vs f64':>8} {'vs ' + m['rule']:>12}   thresholds "
                         f"{r['thresholds']['first_step_rel']:g} / {r['thresholds']['curve_rel_applied']:.2g}")
            continue
        verdict = {True: "pass", False: "FAIL", None: ""}[r["passed"]]
        if r["passed"] and r["explained"]:
            verdict = "pass, explained"
        lines.append(f"  {r['framework'] + '/' + str(r['variant']):<30} {MARK.get(r['status'], r['status']):<7} "
                     f"{m['update_rule']:<11} {_fmt(m['first_step_rel_dev']):>8} "
                     f"{_fmt(m['first_logits_max_abs_diff']):>8} {_fmt(m['max_curve_rel_dev']):>9} "
                     f"{_fmt(m['curve_rel_dev_vs_reference']):>8} {_fmt(m['curve_rel_dev_vs_primary_reference']):>12}"
                     f"   {verdict}")
    lines += ["", "Relative deviations. 1st step: first-step loss vs the float64 reference. vs median: the loss "
              "curve vs the median column with the same update rule (harness.checks.parity.RULES). vs f64: vs the float64 "
              "reference with the column's rule. vs <rule>: vs the float64 reference with the task's primary rule. "
              "logits: max |Δ| of the untrained model's outputs on 32 training images. Why a row is explained: "
              "parity.jsonl, field `explained`."]
    return "\n".join(lines).lstrip("\n")
