"""MNIST MLP in plain JAX: parameters are a pytree of arrays, the model a pure function of them,
jax.value_and_grad + optax.adam inside one @jax.jit step that takes state in and gives state out."""
import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from harness.matrix.init import shared_params

VARIANTS = {"jit": "params pytree + jax.value_and_grad + optax.adam in one @jax.jit train_step"}


# %% model
class Model(NamedTuple):
    apply: Callable  # apply(params, x) -> logits: a pure, jit-compiled function
    params: list  # one {"kernel": [in, out], "bias": [out]} dict per layer: a pytree  # concept: params


# concept-absent: mode: a pure function has no mode switch: a layer that differs would take a flag
def mlp(params, x):
    *hidden, last = params
    for layer in hidden:
        x = jax.nn.relu(x @ layer["kernel"] + layer["bias"])  # concept: forward
    return x @ last["kernel"] + last["bias"]  # logits: no activation on the last layer


def init_params(spec, shapes):
    """LeCun-normal kernels (Flax's default; torch draws U(±1/√fan_in), Keras Glorot) and zero biases.
    JAX has no hidden global seed: every random draw takes an explicit key, split once per layer."""
    if spec.init == "shared":  # the spec's weights, already in JAX's [in, out] / HWIO layout
        return jax.tree.map(jnp.asarray, shared_params(spec))
    keys = jax.random.split(jax.random.key(spec.seed), len(shapes))  # concept: seed
    return [{"kernel": jax.nn.initializers.lecun_normal()(key, shape), "bias": jnp.zeros(shape[-1])}
            for key, shape in zip(keys, shapes)]


def build_model(spec):
    sizes = (spec.input_size, *spec.hidden, spec.num_classes)
    model = Model(jax.jit(mlp), init_params(spec, list(zip(sizes[:-1], sizes[1:]))))  # concept: jit
    return with_precision(model, spec)


def count_params(model):
    return sum(leaf.size for leaf in jax.tree.leaves(model.params))


# %% precision
def to_bf16(tree):
    return jax.tree.map(lambda a: a.astype(jnp.bfloat16), tree)


def with_precision(model, spec):
    """JAX has no autocast: the dtypes are the arrays' own. mixed: float32 params, cast (with the inputs)
    to bfloat16 inside the forward, so the gradients flow back as float32. bf16: the params stored in
    bfloat16 (Adam's moments, created like them, follow)."""
    if spec.precision == "fp32":
        return model

    def forward(params, x):  # the apply that train_step, predict and precision_used all call
        return model.apply(to_bf16(params), x.astype(jnp.bfloat16))  # concept: precision

    return Model(jax.jit(forward), to_bf16(model.params) if spec.precision == "bf16" else model.params)


def precision_used(model, spec, x):
    return {"params": jax.tree.leaves(model.params)[0].dtype, "compute": model.apply(model.params, x).dtype}


# %% loss
def loss_fn(params, apply, x, y):
    logits = apply(params, x).astype(jnp.float32)  # the loss in float32 whatever the compute dtype
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()  # concept: loss


# %% step
@functools.partial(jax.jit, static_argnames=("apply", "tx"))  # functions are compile-time constants  # concept: jit
# concept-absent: zero-grad: value_and_grad returns the gradients as a new pytree: nothing accumulates
def train_step(params, opt_state, x, y, *, apply, tx):
    loss, grads = jax.value_and_grad(loss_fn)(params, apply, x, y)  # w.r.t. the 1st argument  # concept: gradient
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss  # new arrays: nothing is mutated  # concept: step


# %% train
# concept-absent: device: arrays go to JAX's default device, the GPU when one is visible
def train(model, spec, data, rec):
    eps = 1e-8 if spec.adam_eps is None else spec.adam_eps  # optax's default; eps outside the sqrt, like torch
    tx = optax.adam(spec.lr, b1=spec.beta1, b2=spec.beta2, eps=eps)  # concept: optimizer
    params, opt_state = model.params, tx.init(model.params)  # Adam's moments: a pytree shaped like params
    for epoch in range(spec.epochs):
        for idx in data.epoch_batches(epoch):  # concept: batching
            # batches are sliced from the numpy arrays on the host; the jitted step copies them to the
            # device. Indexing a jax array with idx outside jit dispatches a gather op by op: 2x the step.
            params, opt_state, loss = train_step(params, opt_state, data.x_train[idx], data.y_train[idx],
                                                 apply=model.apply, tx=tx)
            # the call returns before the step has run (asynchronous dispatch); reading the loss waits
            rec.step(loss)
        rec.epoch(model._replace(params=params))
    return model._replace(params=params)


# %% evaluate
def predict(model, x):
    return np.asarray(model.apply(model.params, x), np.float32)  # float32 logits for every precision


# %% save
def save(model, path):
    np.savez(path + ".npz", *jax.tree.leaves(model.params))  # the leaves, in the tree's order  # concept: save-load


def restore(model, path):
    """The tree structure and dtypes come from the code (a freshly built model), the numbers from the file."""
    fresh = jax.tree.leaves(model.params)
    with np.load(path + ".npz") as saved:  # concept: save-load
        # numpy has no bfloat16: npz keeps those as raw 2-byte records, viewed back in the model's dtype
        leaves = [jnp.asarray(saved[f"arr_{i}"].view(leaf.dtype)) for i, leaf in enumerate(fresh)]
    return model._replace(params=jax.tree.unflatten(jax.tree.structure(model.params), leaves))


def load(spec, path):
    return restore(build_model(spec), path)


# %% export
def export_onnx(model, path, example):
    from jax2onnx import to_onnx  # the exporter is imported only to export (it is not the framework)

    # jax2onnx traces the function with a symbolic batch "B"; the params become constants in the graph
    to_onnx(functools.partial(model.apply, model.params), [("B", *example.shape[1:])],  # concept: export
            return_mode="file", output_path=path)
    return {"exporter": "jax2onnx.to_onnx"}


# %% deploy
def export_function(fn, path, example):
    """jax.export: `fn` traced once to StableHLO, with the batch axis symbolic, serialized to bytes. The
    weights `fn` closes over become constants of the program: the file is the whole model."""
    from jax import export

    batch = export.symbolic_shape("batch")  # a dimension variable: one program for every batch size
    exported = export.export(jax.jit(fn))(jax.ShapeDtypeStruct((*batch, *example.shape[1:]), jnp.float32))
    with open(path + ".jax_export", "wb") as f:
        f.write(exported.serialize())  # concept: deploy
    return {"exporter": "jax.export.export + serialize (StableHLO)", "file": path + ".jax_export"}


def export_deploy(model, path, example):
    return export_function(functools.partial(model.apply, model.params), path, example)


def load_deploy(file):
    from jax import export

    with open(file, "rb") as f:
        exported = export.deserialize(bytearray(f.read()))  # concept: deploy
    return lambda x: np.asarray(exported.call(x))  # compiled for this machine on the first call
