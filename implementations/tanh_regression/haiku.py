"""Tanh regression d -> H (tanh) -> 1 in Haiku: an hk.Module with two hk.Linear, or hk.Sequential, inside
a function that hk.transform makes pure. The params are a plain pytree, so the loss, the optax step, the
loop, saving and export are plain JAX, imported from tanh_regression/jax.py."""
import haiku as hk
import jax.numpy as jnp

from implementations.mnist_mlp.haiku import init_model
from implementations.tanh_regression.jax import (  # noqa: F401 - the harness calls these  # concepts-from: tanh_regression/jax.py
    count_params, export_onnx, loss_fn, predict, restore, save, train, train_step)

VARIANTS = {
    "modules": "class TanhRegressor(hk.Module): two hk.Linear made in __call__, under the module's name",
    "sequential": "hk.Sequential([hk.Linear(H), jnp.tanh, hk.Linear(1)])",
}


# %% model
class TanhRegressor(hk.Module):
    """hk.transform records every parameter a Module creates, named by its place in the module tree
    ("tanh_regressor/~/hidden": {"w", "b"}): the params dict is that tree, flattened into names."""

    def __init__(self, hidden_size, name=None):
        super().__init__(name=name)
        self.hidden_size = hidden_size

    def __call__(self, x):
        h = jnp.tanh(hk.Linear(self.hidden_size, name="hidden")(x))  # concept: forward
        return hk.Linear(1, name="out")(h)


def build_model(spec):
    def forward(x):
        if spec.variant == "sequential":
            return hk.Sequential([hk.Linear(spec.hidden), jnp.tanh, hk.Linear(1)])(x)  # concept: forward
        return TanhRegressor(spec.hidden)(x)

    return init_model(forward, spec, (spec.d,))  # hk.transform, init on a dummy batch, shared weights


def load(spec, path):
    return restore(build_model(spec), path)
