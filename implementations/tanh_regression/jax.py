"""Tanh regression d -> H (tanh) -> 1 in plain JAX: the parameters are a pytree, the model a pure function
of them — written out, or composed with jax.example_libraries.stax.serial — and jax.value_and_grad +
optax (SGD or Adam) inside one @jax.jit step that takes state in and gives state out."""
import functools

import jax
import jax.numpy as jnp
import optax
from jax.example_libraries import stax

from harness.matrix.init import shared_params
# the (apply, params) model, predict, save and export are the MNIST MLP's
from implementations.mnist_mlp.jax import (  # noqa: F401  # concepts-from: mnist_mlp/jax.py
    Model, count_params, export_onnx, predict, restore, save)

VARIANTS = {
    "modules": "a dict of named layers {'hidden': {kernel, bias}, 'out': {...}} and a forward function over it",
    "sequential": "stax.serial(Dense(H), Tanh, Dense(1)): init_fun/apply_fun pairs composed in order",
}


# %% model
# concept-absent: mode: a pure function has no mode switch: a layer that differs would take a flag
def tanh_net(params, x):
    h = jnp.tanh(x @ params["hidden"]["kernel"] + params["hidden"]["bias"])  # concept: forward
    return h @ params["out"]["kernel"] + params["out"]["bias"]


def build_model(spec):
    """The parameters are whatever pytree the forward function reads: jax.grad differentiates with respect
    to every leaf of it, however nested (a dict of dicts here, stax's list of tuples in the other variant)."""
    key = jax.random.key(spec.seed)  # JAX has no hidden global seed: every draw takes a key  # concept: seed
    shared = [jax.tree.map(jnp.asarray, p) for p in shared_params(spec)]
    if spec.variant == "sequential":
        init_fun, apply_fun = stax.serial(stax.Dense(spec.hidden), stax.Tanh, stax.Dense(1))
        _, params = init_fun(key, (-1, spec.d))  # [(W, b), (), (W, b)]: Tanh has no parameters  # concept: params
        if spec.init == "shared":
            params = [(shared[0]["kernel"], shared[0]["bias"]), (), (shared[1]["kernel"], shared[1]["bias"])]
        return Model(jax.jit(apply_fun), params)  # concept: jit
    if spec.init == "shared":
        params = {"hidden": shared[0], "out": shared[1]}
    else:  # LeCun-normal kernels, zero biases (Flax's defaults)
        k1, k2 = jax.random.split(key)
        init = jax.nn.initializers.lecun_normal()
        params = {"hidden": {"kernel": init(k1, (spec.d, spec.hidden)), "bias": jnp.zeros(spec.hidden)},  # concept: params
                  "out": {"kernel": init(k2, (spec.hidden, 1)), "bias": jnp.zeros(1)}}
    return Model(jax.jit(tanh_net), params)  # concept: jit


# %% loss
def loss_fn(params, apply, x, y):
    return jnp.mean((apply(params, x) - y) ** 2)  # concept: loss


# %% step
def optimizer(spec):
    if spec.optimizer == "adam":
        eps = 1e-8 if spec.adam_eps is None else spec.adam_eps  # optax's default; eps outside the sqrt, like torch
        return optax.adam(spec.lr, b1=spec.beta1, b2=spec.beta2, eps=eps)  # concept: optimizer
    return optax.sgd(spec.lr)  # concept: optimizer


@functools.partial(jax.jit, static_argnames=("apply", "tx"))  # functions are compile-time constants  # concept: jit
# concept-absent: zero-grad: value_and_grad returns the gradients as a new pytree: nothing accumulates
def train_step(params, opt_state, x, y, *, apply, tx):
    loss, grads = jax.value_and_grad(loss_fn)(params, apply, x, y)  # a pytree shaped like params  # concept: gradient
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss  # new arrays: nothing is mutated  # concept: step


# %% train
# concept-absent: device: arrays go to JAX's default device, the GPU when one is visible
def train(model, spec, data, rec):
    tx = optimizer(spec)
    params, opt_state = model.params, tx.init(model.params)
    for epoch in range(spec.epochs):
        for x, y in data.batches(epoch):  # concept: batching
            params, opt_state, loss = train_step(params, opt_state, x, y, apply=model.apply, tx=tx)
            rec.step(loss)  # the step runs asynchronously; reading the loss waits for it
        rec.epoch(model._replace(params=params))
    return model._replace(params=params)


def load(spec, path):
    return restore(build_model(spec), path)
