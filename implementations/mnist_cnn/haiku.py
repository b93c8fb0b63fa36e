"""MNIST CNN in Haiku: hk.Conv2D (NHWC, HWIO kernels) and hk.max_pool inside a function that
hk.transform makes pure. Trained exactly like the MLP (plain JAX + optax, via mnist_mlp/haiku.py)."""
import haiku as hk
import jax

from implementations.mnist_mlp.haiku import (  # noqa: F401 - for the harness  # concepts-from: mnist_mlp/haiku.py
    count_params, export_deploy, export_onnx, load_deploy, init_model, loss_fn, precision_used, predict, restore, save,
    train, train_step, with_policy)

VARIANTS = {"transform": "hk.transform(forward) with hk.Conv2D + hk.max_pool, optax.adam, @jax.jit step"}


# %% model
def build_model(spec):
    k, p = spec.kernel_size, spec.pool_size

    def forward(x):
        for filters in spec.conv_filters:
            x = jax.nn.relu(hk.Conv2D(filters, kernel_shape=k, padding="VALID")(x))  # concept: forward
            x = hk.max_pool(x, window_shape=(1, p, p, 1), strides=(1, p, p, 1), padding="VALID")
        return hk.Linear(spec.num_classes)(hk.Flatten()(x))  # flatten (h, w, c), then logits

    return init_model(with_policy(forward, spec), spec, spec.input_shape)


def load(spec, path):
    return restore(build_model(spec), path)
