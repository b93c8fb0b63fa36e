"""MNIST MLP in Haiku: Modules are written as objects, then hk.transform turns the forward function into
a pair of pure functions, init(key, x) -> params and apply(params, x) -> logits. Haiku stops there: the
params are a plain pytree, so the loss, the optax step, the loop, saving and export are plain JAX,
imported from mnist_mlp/jax.py."""
import haiku as hk
import jax
import jax.numpy as jnp
import jmp  # DeepMind's mixed-precision policies, a dependency of dm-haiku

from harness.matrix.init import shared_params
from implementations.mnist_mlp.jax import (  # noqa: F401 - the harness calls these  # concepts-from: mnist_mlp/jax.py
    Model, count_params, export_deploy, export_onnx, load_deploy, loss_fn, precision_used, predict, restore, save,
    train, train_step)

VARIANTS = {"transform": "hk.transform(forward) -> pure init/apply + optax.adam + @jax.jit train_step"}


# %% model
def init_model(forward, spec, input_shape):
    """Kernels: Haiku's truncated normal, stddev 1/sqrt(fan_in) (Linear; Conv2D: LeCun normal); biases 0."""
    model = hk.without_apply_rng(hk.transform(forward))  # no dropout: apply needs no random key
    # shapes from a dummy batch
    params = model.init(jax.random.key(spec.seed), jnp.zeros((1, *input_shape)))  # concept: params, seed
    if spec.init == "shared":  # Haiku calls kernel "w" and bias "b"; layers are named in creation order
        shared = {name: {"w": jnp.asarray(p["kernel"]), "b": jnp.asarray(p["bias"])}
                  for name, p in zip(params, shared_params(spec))}
        params = jax.tree.map(lambda new, old: new.astype(old.dtype), shared, params)  # in init's dtypes
    return Model(jax.jit(model.apply), params)  # concept: jit


def build_model(spec):
    def forward(x):
        return hk.nets.MLP([*spec.hidden, spec.num_classes])(x)  # ReLU between layers, logits out  # concept: forward

    return init_model(with_policy(forward, spec), spec, (spec.input_size,))


def load(spec, path):
    return restore(build_model(spec), path)


# %% precision
# Haiku's idiom: a jmp policy per Module class: its parameters are created in `params`, cast with the inputs
# to `compute` on every call, outputs cast to `output` (bfloat16 here: the loss casts the logits to float32)
POLICIES = {"mixed": "params=float32,compute=bfloat16,output=bfloat16",
            "bf16": "params=bfloat16,compute=bfloat16,output=bfloat16"}


def with_policy(forward, spec):
    """The policies pushed inside the transformed function, so they hold for init and for every apply (and
    leave Haiku's global per-class table as it was)."""
    if spec.precision == "fp32":
        return forward
    policy = jmp.get_policy(POLICIES[spec.precision])

    def forward_with_policy(x):
        with (hk.mixed_precision.push_policy(hk.Linear, policy),  # concept: precision
              hk.mixed_precision.push_policy(hk.Conv2D, policy)):
            return forward(x)

    return forward_with_policy

