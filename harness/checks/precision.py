"""Precision modes: the dtypes a cell really trained in, read back from the trained model, against the ones
`--precision` asked for (harness.matrix.tasks.PRECISION_DTYPES).

An implementation file says what it used through `precision_used(model, spec, x)`: the dtype of its weights
and the dtype of the logits that its training forward pass (the same autocast, policy or casts) gives on a
batch, before any cast to float32 for the loss. A cell asked for bf16 that trained in float32 is an error,
not a row: its step time would be reported as bf16's.
"""
from __future__ import annotations

from harness.matrix.tasks import PRECISION_DTYPES


class PrecisionMismatch(RuntimeError):
    """The model's dtypes are not those of the precision the cell was asked for."""


def dtype_name(dtype) -> str:
    """"torch.bfloat16", "<dtype: 'bfloat16'>", numpy/jax "bfloat16", Keras "float32" -> "bfloat16" / "float32"."""
    text = str(getattr(dtype, "name", dtype))
    return text.replace("<dtype: '", "").rstrip("'>").split(".")[-1]


def check(module, model, spec, x) -> dict | None:
    """The row's `precision` block; raises PrecisionMismatch when the cell did not train as asked."""
    params, compute = PRECISION_DTYPES[spec.precision]
    if not hasattr(module, "precision_used"):
        if spec.precision == "fp32":
            return None
        raise PrecisionMismatch(f"{module.__name__} has no precision modes (no precision_used): "
                                f"it cannot run --precision {spec.precision}")
    used = {key: dtype_name(value) for key, value in module.precision_used(model, spec, x).items()}
    block = {"requested": spec.precision, "params": used["params"], "compute": used["compute"],
             "expected": {"params": params, "compute": compute}}
    block["tf32"] = tf32_state(module.__name__, spec.device)
    if (used["params"], used["compute"]) != (params, compute):
        raise PrecisionMismatch(f"--precision {spec.precision} expects {params} weights and {compute} compute; "
                                f"the model trained with {used['params']} weights and {used['compute']} compute")
    block["status"] = "ok"
    return block


def tf32_state(module_name: str, device: str) -> bool | None:
    """On a GPU, whether float32 matmuls may run in TF32 (Ampere and newer do by default in TF and JAX);
    None on a CPU, which has no TF32."""
    if device != "gpu":
        return None
    if module_name.endswith(("pytorch", "lightning")):
        import torch

        return bool(torch.backends.cuda.matmul.allow_tf32)
    if module_name.endswith(("tf1", "tf2")):
        import tensorflow as tf

        return bool(tf.config.experimental.is_tensor_float_32_execution_enabled())
    if module_name.endswith(("jax", "flax", "haiku")):
        import jax

        return jax.config.jax_default_matmul_precision in (None, "tensorfloat32", "bfloat16", "default")
    return None
