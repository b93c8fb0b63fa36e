"""Linear regression Y = XA + b in plain JAX: the parameters are a pytree (a dict of arrays), the loss a
pure function of them, jax.grad its gradient, and the SGD update one jax.tree.map over the pytree. A second
variant builds each mini-batch's update from single-sample gradients with optax.MultiSteps."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

VARIANTS = {"jit": "jax.value_and_grad + a @jax.jit step: params - lr * grads with jax.tree.map",
            "accumulate": "optax.MultiSteps(optax.sgd, every_k_schedule=k): one sample per call, the update "
                          "applied every k-th (gradient accumulation; mini-batch mode only)"}


# %% model
def build_model(spec):
    return {"A": jnp.zeros((spec.d, 1)), "b": jnp.zeros((1,))}  # zeros, as in every column  # concept: params


def count_params(model):
    return sum(leaf.size for leaf in jax.tree.leaves(model))


@jax.jit  # concept: jit
# concept-absent: mode: a pure function has no mode switch: a layer that differs would take a flag
def forward(params, x):
    return x @ params["A"] + params["b"]  # concept: forward


# %% loss
def loss_fn(params, x, y):
    return jnp.mean((forward(params, x) - y) ** 2)  # concept: loss


# %% step
@jax.jit  # concept: jit
# concept-absent: zero-grad: value_and_grad returns the gradients as a new pytree: nothing accumulates
def train_step(params, x, y, lr):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)  # a pytree shaped like params  # concept: gradient
    # concept-absent: optimizer: plain SGD written out (optax.sgd would do the same; the accumulate variant wraps it)
    params = jax.tree.map(lambda p, g: p - lr * g, params, grads)  # concept: step
    return params, loss


def accumulate_step(optimizer):
    """A jitted single-sample step for `optimizer` = optax.MultiSteps(...): it keeps the running mean of
    the gradients in its state and returns zero updates until the k-th call, which applies the inner
    optimizer (here SGD) to the mean of the k gradients: the mini-batch's step, in k pieces."""
    @jax.jit  # concept: jit
    def step(params, state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)  # concept: gradient
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss  # concept: step
    return step


# %% train
def train_accumulate(params, spec, data, rec):
    optimizer = optax.MultiSteps(optax.sgd(spec.lr), every_k_schedule=data.batch_size)
    state, step = optimizer.init(params), accumulate_step(optimizer)
    for epoch in range(spec.epochs):
        for x, y in data.batches(epoch):  # concept: batching
            losses = []
            for i in range(len(x)):  # one sample at a time; MultiSteps updates on the last
                params, state, loss = step(params, state, x[i:i + 1], y[i:i + 1])
                losses.append(loss)
            rec.step(jnp.mean(jnp.stack(losses)))  # the mini-batch's mean loss
        rec.epoch(params)
    return params


# concept-absent: device: arrays go to JAX's default device, the GPU when one is visible
def train(model, spec, data, rec):
    if spec.variant == "accumulate":
        return train_accumulate(model, spec, data, rec)
    params = model
    for epoch in range(spec.epochs):
        for x, y in data.batches(epoch):  # concept: batching
            params, loss = train_step(params, x, y, spec.lr)
            rec.step(loss)  # the step runs asynchronously; reading the loss waits for it
        rec.epoch(params)
    return params


# %% evaluate
def predict(model, x):
    return np.asarray(forward(model, x))


# %% save
def save(model, path):
    np.savez(path + ".npz", **model)  # a flat dict of arrays: numpy's own format is enough  # concept: save-load


def load(spec, path):
    with np.load(path + ".npz") as saved:  # concept: save-load
        return {name: jnp.asarray(saved[name]) for name in saved.files}


# %% export
def export_onnx(model, path, example):
    from jax2onnx import to_onnx  # the exporter is imported only to export (it is not the framework)

    to_onnx(functools.partial(forward, model), [("B", example.shape[1])], return_mode="file",
            output_path=path)  # concept: export
    return {"exporter": "jax2onnx.to_onnx"}
