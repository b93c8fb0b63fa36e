"""Linear regression Y = XA + b in Haiku: one hk.Linear inside a function that hk.transform makes pure;
the resulting params pytree is trained with optax.sgd in a @jax.jit step (plain JAX from there on)."""
import functools

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax

VARIANTS = {"transform": "hk.transform(hk.Linear) + optax.sgd + @jax.jit train_step"}


# %% model
def forward(x):
    return hk.Linear(1, w_init=hk.initializers.Constant(0.0))(x)  # w is A, [d, 1]; b is 0  # concept: forward


linear = hk.without_apply_rng(hk.transform(forward))  # pure functions: init(key, x), apply(params, x)
apply = jax.jit(linear.apply)  # concept: jit


def build_model(spec):
    return linear.init(jax.random.key(spec.seed), jnp.zeros((1, spec.d)))  # {"linear": {"w", "b"}}  # concept: params


def count_params(model):
    return hk.data_structures.tree_size(model)


# %% loss
def loss_fn(params, x, y):
    return jnp.mean((linear.apply(params, x) - y) ** 2)  # concept: loss


# %% step
@functools.partial(jax.jit, static_argnames="tx")  # concept: jit
# concept-absent: zero-grad: value_and_grad returns the gradients as a new pytree: nothing accumulates
def train_step(params, opt_state, x, y, tx):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)  # concept: gradient
    updates, opt_state = tx.update(grads, opt_state)  # sgd: updates = -lr * grads
    return optax.apply_updates(params, updates), opt_state, loss  # concept: step


# %% train
# concept-absent: device: arrays go to JAX's default device, the GPU when one is visible
# concept-absent: mode: hk.transform gives pure functions: a layer that differs takes is_training
def train(model, spec, data, rec):
    tx = optax.sgd(spec.lr)  # concept: optimizer
    params, opt_state = model, tx.init(model)  # concept: optimizer
    for epoch in range(spec.epochs):
        for x, y in data.batches(epoch):  # concept: batching
            params, opt_state, loss = train_step(params, opt_state, x, y, tx=tx)
            rec.step(loss)  # the step runs asynchronously; reading the loss waits for it
        rec.epoch(params)
    return params


# %% evaluate
def predict(model, x):
    return np.asarray(apply(model, x))


# %% save
def save(model, path):
    np.savez(path + ".npz", **{f"{module}/{name}": value  # concept: save-load
                               for module, name, value in hk.data_structures.traverse(model)})


def load(spec, path):
    params = {}
    with np.load(path + ".npz") as saved:  # concept: save-load
        for key in saved.files:
            module, name = key.rsplit("/", 1)
            params.setdefault(module, {})[name] = jnp.asarray(saved[key])
    return params


# %% export
def export_onnx(model, path, example):
    from jax2onnx import to_onnx  # the exporter is imported only to export (it is not the framework)

    to_onnx(functools.partial(apply, model), [("B", example.shape[1])], return_mode="file",
            output_path=path)  # concept: export
    return {"exporter": "jax2onnx.to_onnx"}
