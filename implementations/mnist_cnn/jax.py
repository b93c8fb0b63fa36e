"""MNIST CNN in plain JAX: lax.conv_general_dilated on NHWC images with HWIO kernels, a max-pool written
with jnp, and the same params pytree as the MLP. Trained exactly like the MLP: loss, step, train,
predict, save and export come from mnist_mlp/jax.py."""
import functools

import jax
from jax import lax

from implementations.mnist_mlp.jax import (  # noqa: F401 - the harness calls these  # concepts-from: mnist_mlp/jax.py
    Model, count_params, export_deploy, export_onnx, load_deploy, init_params, loss_fn, precision_used, predict,
    restore, save, train, train_step, with_precision)

VARIANTS = {"jit": "params pytree + lax.conv_general_dilated + optax.adam in one @jax.jit train_step"}


# %% model
def max_pool(x, size):
    """size x size max-pool, stride size, floor (VALID): each window becomes two axes that max reduces.
    lax.reduce_window is JAX's general pooling primitive, but jax2onnx turns it into a 4-D ONNX
    MaxPool that onnxruntime rejects ("Unsupported pooling size"); this form exports."""
    n, h, w, c = x.shape
    x = x[:, : h // size * size, : w // size * size]
    return x.reshape(n, h // size, size, w // size, size, c).max(axis=(2, 4))


def cnn(params, x, pool_size):
    *convs, dense = params
    for layer in convs:
        x = lax.conv_general_dilated(x, layer["kernel"], window_strides=(1, 1), padding="VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        x = max_pool(jax.nn.relu(x + layer["bias"]), pool_size)  # concept: forward
    return x.reshape(x.shape[0], -1) @ dense["kernel"] + dense["bias"]  # flatten (h, w, c), then logits


def build_model(spec):
    k, channels = spec.kernel_size, (spec.input_shape[2], *spec.conv_filters)
    shapes = [(k, k, c_in, c_out) for c_in, c_out in zip(channels[:-1], channels[1:])]
    shapes.append((spec.flat_size, spec.num_classes))
    model = Model(jax.jit(functools.partial(cnn, pool_size=spec.pool_size)), init_params(spec, shapes))
    return with_precision(model, spec)


def load(spec, path):
    return restore(build_model(spec), path)
