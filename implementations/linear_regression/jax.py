"""Linear regression Y = XA + b in plain JAX: the parameters are a pytree (a dict of arrays), the loss a
pure function of them, jax.grad its gradient, and the SGD update one jax.tree.map over the pytree."""
import functools

import jax
import jax.numpy as jnp
import numpy as np

VARIANTS = {"jit": "jax.value_and_grad + a @jax.jit step: params - lr * grads with jax.tree.map"}


# %% model
def build_model(spec):
    return {"A": jnp.zeros((spec.d, 1)), "b": jnp.zeros((1,))}  # zeros: every framework starts here


def count_params(model):
    return sum(leaf.size for leaf in jax.tree.leaves(model))


@jax.jit
def forward(params, x):
    return x @ params["A"] + params["b"]


# %% loss
def loss_fn(params, x, y):
    return jnp.mean((forward(params, x) - y) ** 2)


# %% step
@jax.jit
def train_step(params, x, y, lr):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)  # grads: a pytree shaped like params
    # plain SGD written out (optax.sgd would do the same): a new pytree, nothing updated in place
    params = jax.tree.map(lambda p, g: p - lr * g, params, grads)
    return params, loss


# %% train
def train(model, spec, data, rec):
    params = model
    for epoch in range(spec.epochs):
        for x, y in data.batches(epoch):
            params, loss = train_step(params, x, y, spec.lr)
            rec.step(loss)  # the step runs asynchronously; reading the loss waits for it
        rec.epoch(params)
    return params


# %% evaluate
def predict(model, x):
    return np.asarray(forward(model, x))


# %% save
def save(model, path):
    np.savez(path + ".npz", **model)  # a flat dict of arrays: numpy's own format is enough


def load(spec, path):
    with np.load(path + ".npz") as saved:
        return {name: jnp.asarray(saved[name]) for name in saved.files}


# %% export
def export_onnx(model, path, example):
    from jax2onnx import to_onnx  # the exporter is imported only to export (it is not the framework)

    to_onnx(functools.partial(forward, model), [("B", example.shape[1])], return_mode="file", output_path=path)
    return {"exporter": "jax2onnx.to_onnx"}
