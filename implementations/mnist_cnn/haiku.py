"""MNIST CNN in Haiku: hk.Conv2D (NHWC, HWIO kernels) and hk.max_pool inside a function that
hk.transform makes pure. Trained exactly like the MLP (plain JAX + optax, via mnist_mlp/haiku.py)."""
import haiku as hk
import jax

from implementations.mnist_cnn.jax import max_pool
from implementations.mnist_mlp.haiku import (  # noqa: F401 - for the harness  # concepts-from: mnist_mlp/haiku.py
    count_params, export_deploy, export_onnx, load_deploy, init_model, loss_fn, precision_used, predict, restore, save,
    train, train_step, with_policy)

VARIANTS = {
    "transform": "hk.transform(forward) with hk.Conv2D + hk.max_pool, optax.adam, @jax.jit step",
    "tuned": "the same forward with the jax column's reshape-and-max pool in place of hk.max_pool",
}


# %% model
def build_model(spec):
    if spec.variant == "tuned":
        return tuned_model(spec)  # below, in its own cell
    p = spec.pool_size
    return model_with_pool(spec, lambda x: hk.max_pool(x, window_shape=(1, p, p, 1), strides=(1, p, p, 1),
                                                       padding="VALID"))


def model_with_pool(spec, pool):
    def forward(x):
        for filters in spec.conv_filters:
            x = jax.nn.relu(hk.Conv2D(filters, kernel_shape=spec.kernel_size, padding="VALID")(x))  # concept: forward
            x = pool(x)
        return hk.Linear(spec.num_classes)(hk.Flatten()(x))  # flatten (h, w, c), then logits

    return init_model(with_policy(forward, spec), spec, spec.input_shape)


def load(spec, path):
    return restore(build_model(spec), path)


# %% tuned-model
# tuned: the same modules, parameters and init; only the pool differs. hk.max_pool is lax.reduce_window, whose
# gradient XLA:CPU runs slowly (select_and_scatter: ~48 ms of an ~82 ms step, see the README); the jax
# column's max_pool, a reshape and a max over each window's own axes, computes the same values and gradients
# in a fraction of that, and exports to ONNX as ReduceMax. Step, 2 threads, batch 128 (the README's MNIST
# bench): 116 -> 80 ms; what remains is XLA:CPU's convolution gradients (README, speed goals).
def tuned_model(spec):
    return model_with_pool(spec, lambda x: max_pool(x, spec.pool_size))
