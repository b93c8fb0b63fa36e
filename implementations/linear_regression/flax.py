"""Linear regression Y = XA + b in Flax nnx: one nnx.Linear layer is the whole model, nnx.Optimizer
with optax.sgd updates it in place inside an @nnx.jit step."""
import functools

import jax
import numpy as np
import optax
from flax import nnx, serialization

VARIANTS = {
    "nnx": "nnx.Linear + nnx.Optimizer(optax.sgd) + @nnx.jit train_step (through nnx.cached_partial)",
    "functional": "the same objects split once into (graphdef, state) pytrees; a @jax.jit step merges them",
}


# %% model
def build_model(spec):
    # kernel A is [d, 1] (inputs first, as in Y = XA + b); zeros so that every framework starts alike
    return nnx.Linear(spec.d, 1, kernel_init=nnx.initializers.zeros, rngs=nnx.Rngs(spec.seed))  # concept: params


def count_params(model):
    return sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


# %% loss
def loss_fn(model, x, y):
    return ((model(x) - y) ** 2).mean()  # concept: loss


# %% step
# concept-absent: zero-grad: nnx.value_and_grad returns new gradients every call: nothing accumulates
def sgd_step(model, optimizer, x, y):
    loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)  # concept: gradient
    optimizer.update(model, grads)  # p <- p - lr * grad, in place on the model's nnx.Params  # concept: step
    return loss


train_step = nnx.jit(sgd_step)  # like jax.jit, but Modules go in and their updates come back out  # concept: jit


@functools.partial(jax.jit, static_argnums=0)  # concept: jit
def functional_step(graphdef, state, x, y):
    """Flax's functional API: pure pytrees in and out; merge and split run only while tracing."""
    model, optimizer = nnx.merge(graphdef, state)
    loss = sgd_step(model, optimizer, x, y)
    return nnx.state((model, optimizer)), loss


# %% train
# concept-absent: device: arrays go to JAX's default device, the GPU when one is visible
def train(model, spec, data, rec):
    optimizer = nnx.Optimizer(model, optax.sgd(spec.lr), wrt=nnx.Param)  # concept: optimizer
    # nnx.jit walks the Python object graph on every call, which tiny steps feel most: cached_partial
    # walks it once; the functional split walks it never inside the loop ("Performance considerations")
    if spec.variant == "functional":
        graphdef, state = nnx.split((model, optimizer))  # static structure + a pytree of arrays
    else:
        step = nnx.cached_partial(train_step, model, optimizer)
    for epoch in range(spec.epochs):
        for x, y in data.batches(epoch):  # concept: batching
            if spec.variant == "functional":
                state, loss = functional_step(graphdef, state, x, y)
            else:
                loss = step(x, y)
            rec.step(loss)  # reading the loss waits for the asynchronously dispatched step
        if spec.variant == "functional":
            nnx.update((model, optimizer), state)  # write the new state back into the objects
        rec.epoch(model)
    return model


# %% evaluate
@nnx.jit
# concept-absent: mode: no layer here differs in training (nnx's model.eval() switches those that do)
def predict_jit(model, x):
    return model(x)  # concept: forward


def predict(model, x):
    return np.asarray(predict_jit(model, x))


# %% save
def save(model, path):
    with open(path + ".msgpack", "wb") as f:  # the parameter state as a plain dict, in msgpack
        f.write(serialization.to_bytes(nnx.to_pure_dict(nnx.state(model))))  # concept: save-load


def restore(model, path):
    with open(path + ".msgpack", "rb") as f:  # the model's own pure dict is the template: it gives back
        # the keys' types (nnx.Sequential's layers are 0, 1, 2; msgpack stores every key as a string)
        state = serialization.from_bytes(nnx.to_pure_dict(nnx.state(model)), f.read())
    nnx.update(model, state)  # a pure dict updates the matching Variables  # concept: save-load
    return model


def load(spec, path):
    return restore(build_model(spec), path)


# %% export
def export_onnx(model, path, example):
    from jax2onnx import to_onnx  # the exporter is imported only to export (it is not the framework)

    to_onnx(model, [("B", example.shape[1])], return_mode="file", output_path=path)  # concept: export
    return {"exporter": "jax2onnx.to_onnx"}
