"""Shared initial weights (`--init shared`): generated once from the spec's seed, in one canonical layout.

Layout, whatever the framework:
  dense kernel  [in, out]            (torch nn.Linear.weight is its transpose, [out, in])
  conv kernel   [kh, kw, in, out]    (HWIO; torch nn.Conv2d.weight is OIHW: kernel.transpose(3, 2, 0, 1))
  bias          [out]
The CNN's dense layer reads the flattened features in NHWC order (h, w, c), as Keras, TF and Flax
flatten them; PyTorch flattens NCHW (c, h, w), so its converter permutes the kernel's rows
(see `dense_rows_nhwc_to_nchw`).

Kernels are Glorot-uniform and biases zero (Keras's defaults), drawn from one seeded numpy generator.
"""
from __future__ import annotations

import numpy as np


def glorot_uniform(rng, shape, fan_in, fan_out) -> np.ndarray:
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def shared_params(spec) -> list[dict[str, np.ndarray]]:
    """One {"kernel", "bias"} per layer with parameters, in forward order."""
    rng = np.random.default_rng([spec.seed, 2024])
    layers = []
    if spec.task == "linear_regression":
        d = spec.d
        return [{"kernel": np.zeros((d, 1), np.float32), "bias": np.zeros((1,), np.float32)}]
    if spec.task == "tanh_regression":
        sizes = (spec.d, spec.hidden, 1)
    elif spec.model == "cnn":
        k, channels = spec.kernel_size, spec.input_shape[2]
        for filters in spec.conv_filters:
            kernel = glorot_uniform(rng, (k, k, channels, filters), k * k * channels, k * k * filters)
            layers.append({"kernel": kernel, "bias": np.zeros((filters,), np.float32)})
            channels = filters
        sizes = (spec.flat_size, spec.num_classes)
    else:
        sizes = (spec.input_size, *spec.hidden, spec.num_classes)
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers.append({"kernel": glorot_uniform(rng, (fan_in, fan_out), fan_in, fan_out),
                       "bias": np.zeros((fan_out,), np.float32)})
    return layers


def dense_rows_nhwc_to_nchw(kernel: np.ndarray, spec) -> np.ndarray:
    """Reorder a [h*w*c, out] dense kernel to PyTorch's flatten order [c*h*w, out]."""
    size = int(round((spec.flat_size / spec.conv_filters[-1]) ** 0.5))
    c = spec.conv_filters[-1]
    out = kernel.shape[1]
    return kernel.reshape(size, size, c, out).transpose(2, 0, 1, 3).reshape(-1, out)
