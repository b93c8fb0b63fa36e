"""MNIST CNN in Flax (nnx, and linen as a variant): NHWC images, HWIO kernels, no layout conversion.
Trained exactly like the MLP: loss, step, train, predict, save and export come from mnist_mlp/flax.py."""
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
from flax import nnx

from implementations.mnist_cnn.jax import max_pool
from implementations.mnist_mlp.flax import (  # noqa: F401 - the harness calls these  # concepts-from: mnist_mlp/flax.py
    PRECISION, count_params, export_deploy, export_onnx, load_deploy, linen_state, loss_fn, precision_used, predict,
    restore, save, train, train_step, with_init)

VARIANTS = {
    "nnx": "flax.nnx Module (nnx.Conv, nnx.max_pool) + nnx.Optimizer + @nnx.jit train_step",
    "linen": "flax.linen Module (nn.Conv, nn.max_pool) + TrainState + @jax.jit train_step",
    "tuned": "the nnx Module with the jax column's reshape-and-max pool in place of nnx.max_pool",
}


# %% model
class CNN(nnx.Module):
    def __init__(self, spec, *, rngs):
        k, channels = spec.kernel_size, (spec.input_shape[2], *spec.conv_filters)
        dtypes = PRECISION[spec.precision]  # compute and parameter dtypes, as in the MLP
        self.convs = nnx.List([nnx.Conv(c_in, c_out, kernel_size=(k, k), padding="VALID", **dtypes, rngs=rngs)
                               for c_in, c_out in zip(channels[:-1], channels[1:])])
        self.dense = nnx.Linear(spec.flat_size, spec.num_classes, **dtypes, rngs=rngs)  # concept: params
        self.pool = (spec.pool_size, spec.pool_size)

    def __call__(self, x):
        for conv in self.convs:
            x = self.max_pool(nnx.relu(conv(x)))  # concept: forward
        return self.dense(x.reshape(x.shape[0], -1))  # flatten (h, w, c), then logits

    def max_pool(self, x):  # window and strides by keyword: jax2onnx's max_pool plugin needs them so
        return nnx.max_pool(x, window_shape=self.pool, strides=self.pool)


class LinenCNN(nn.Module):
    conv_filters: tuple
    kernel_size: int
    pool_size: int
    num_classes: int
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        k, p = self.kernel_size, self.pool_size
        dtypes = {"dtype": self.dtype, "param_dtype": self.param_dtype}
        for filters in self.conv_filters:
            x = nn.max_pool(nn.relu(nn.Conv(filters, (k, k), padding="VALID", **dtypes)(x)), window_shape=(p, p),
                            strides=(p, p))
        return nn.Dense(self.num_classes, **dtypes)(x.reshape(x.shape[0], -1))


def build_model(spec):
    if spec.variant == "linen":
        module = LinenCNN(spec.conv_filters, spec.kernel_size, spec.pool_size, spec.num_classes,
                          **PRECISION[spec.precision])
        return linen_state(module, spec.input_shape, spec)
    module = TunedCNN if spec.variant == "tuned" else CNN  # TunedCNN: below, in its own cell
    model = module(spec, rngs=nnx.Rngs(spec.seed))  # concept: seed
    return with_init(model, [*model.convs, model.dense], spec)


def load(spec, path):
    return restore(build_model(spec), path)


# %% tuned-model
# tuned: the same layers, parameters and init; only the pool differs. nnx.max_pool is lax.reduce_window, and
# XLA:CPU runs its gradient (select_and_scatter) slowly: ~48 ms of an ~84 ms step (see the README). The jax
# column's pool, a reshape that gives each 2x2 window axes of its own and a max over them, computes the same
# values and gradients in a fraction of that, and exports to ONNX as ReduceMax. Step, 2 threads, batch 128 (the
# README's MNIST bench): 105 -> 88 ms; what remains is XLA:CPU's convolution gradients (README, speed goals).
class TunedCNN(CNN):
    def max_pool(self, x):
        return max_pool(x, self.pool[0])  # the jax column's
