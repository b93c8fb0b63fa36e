"""MNIST MLP in Haiku: Modules are written as objects, then hk.transform turns the forward function into
a pair of pure functions, init(key, x) -> params and apply(params, x) -> logits. Haiku stops there: the
params are a plain pytree, so the loss, the optax step, the loop, saving and export are plain JAX,
imported from mnist_mlp/jax.py."""
import haiku as hk
import jax
import jax.numpy as jnp

from harness.matrix.init import shared_params
from implementations.mnist_mlp.jax import (  # noqa: F401 - the harness calls these  # concepts-from: mnist_mlp/jax.py
    Model, count_params, export_deploy, export_onnx, load_deploy, loss_fn, predict, restore, save, train, train_step)

VARIANTS = {"transform": "hk.transform(forward) -> pure init/apply + optax.adam + @jax.jit train_step"}


# %% model
def init_model(forward, spec, input_shape):
    """Kernels: Haiku's truncated normal, stddev 1/sqrt(fan_in) (Linear; Conv2D: LeCun normal); biases 0."""
    model = hk.without_apply_rng(hk.transform(forward))  # no dropout: apply needs no random key
    # shapes from a dummy batch
    params = model.init(jax.random.key(spec.seed), jnp.zeros((1, *input_shape)))  # concept: params, seed
    if spec.init == "shared":  # Haiku calls kernel "w" and bias "b"; layers are named in creation order
        params = {name: {"w": jnp.asarray(p["kernel"]), "b": jnp.asarray(p["bias"])}
                  for name, p in zip(params, shared_params(spec))}
    return Model(jax.jit(model.apply), params)  # concept: jit


def build_model(spec):
    def forward(x):
        return hk.nets.MLP([*spec.hidden, spec.num_classes])(x)  # ReLU between layers, logits out  # concept: forward

    return init_model(forward, spec, (spec.input_size,))


def load(spec, path):
    return restore(build_model(spec), path)
